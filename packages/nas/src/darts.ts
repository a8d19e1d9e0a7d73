import { RsError, tf, adam, computeGradients, createRng, permutation, softmaxCrossEntropy, type Dataset, type GraphDef, type Model, type Optimizer, type Tensor } from '@rs/core';
import { checkpoint } from '@rs/core/extend';
import { cellNetwork, NB201_EDGES, NB201_OPS, type CellNetworkOptions } from './nb201';

/** Options of {@link dartsSupernet}. */
export interface SupernetOptions extends CellNetworkOptions {
  /** Candidate operations on every edge. Default: the five NAS-Bench-201 ops. */
  candidates?: readonly string[];
  /**
   * Collapse mitigation: dropout on the skip-connection candidate while training (P-DARTS'
   * operation-level dropout, Chen et al. 2019). 0 or undefined: off (vanilla DARTS).
   */
  skipDropout?: number;
}

/**
 * The DARTS supernet of the NAS-Bench-201 cell space: every edge computes all candidates and
 * mixes them with `nas.mixed` (softmax over its `alpha`, role `arch`). Build the model with a
 * registry that has the nas ops (`registerNasOps`).
 *
 * @example
 * const model = Model.create(dartsSupernet({ channels: 8 }), { registry: registerNasOps(createOpRegistry()) });
 */
export function dartsSupernet(options: SupernetOptions = {}): GraphDef {
  const candidates = [...(options.candidates ?? NB201_OPS)];
  for (const c of candidates) {
    if (!(NB201_OPS as readonly string[]).includes(c)) throw new RsError('INVALID_ARGUMENT', `unknown candidate '${c}' (one of ${NB201_OPS.join(', ')}).`);
  }
  const mixedAttrs = options.skipDropout ? { candidateDropout: { candidate: 'skip_connect', rate: options.skipDropout } } : {};
  return cellNetwork(NB201_EDGES.map(() => candidates), options, mixedAttrs);
}

/** Options of {@link darts}. */
export interface DartsOptions {
  /** Data for the weights (w). */
  train: Dataset;
  /** Data for the architecture parameters (alpha); DARTS splits the training set in halves. */
  validation: Dataset;
  steps: number;
  batchSize?: number;
  /** 'first' (alpha gradient at the current w) or 'second' (unrolled one step, DARTS eq. 7-8). */
  order?: 'first' | 'second';
  /** Optimizer of the weights. Default Adam 1e-3. */
  weightOptimizer?: Optimizer;
  /** Optimizer of alpha. Default Adam 3e-4 (DARTS: Adam 3e-4, betas (0.5, 0.999)). */
  archOptimizer?: Optimizer;
  /** xi: learning rate of the virtual step of second-order DARTS. Default 0.01. */
  unrolledLearningRate?: number;
  /** Scale of the finite-difference step of the Hessian-vector product: eps = r / |v|. Default 0.01 (DARTS). */
  hessianStep?: number;
  /**
   * Seed of the batch order: each pass over a data set visits its rows in an order drawn from
   * it (train and validation from different streams). Without a seed, batches are consecutive
   * slices in the data's own order.
   */
  seed?: number;
  /** Called every step with the losses. */
  onStep?: (info: { step: number; trainLoss: number; validationLoss: number }) => void;
}

/** What {@link darts} returns. */
export interface DartsResult {
  /** softmax(alpha) per mixed node, by node id. */
  weights: Record<string, number[]>;
  /** Candidates per mixed node (the order of `weights`). */
  candidates: Record<string, string[]>;
  trainLosses: number[];
  validationLosses: number[];
}

function mixedNodes(model: Model): Array<{ id: string; candidates: string[] }> {
  return model.graph.nodes.filter((n) => n.op === 'nas.mixed').map((n) => ({ id: n.id, candidates: [...(n.attrs as { candidates: string[] }).candidates] }));
}

/**
 * The batch of each step, asked for in step order: consecutive slices without a seed; with one,
 * each pass over the rows follows a new permutation drawn from the seed (a pass's last rows that
 * do not fill a batch are skipped, as the consecutive slices skip them).
 */
function batches(data: Dataset, size: number, seed: number | undefined): (step: number) => { x: Tensor; y: Tensor } {
  if (seed === undefined) return (step) => batchAt(data, step * size, size);
  const count = (data.x as Tensor).shape[0] as number;
  const perPass = Math.floor(count / size);
  const rng = createRng(seed);
  let order = permutation(count, rng);
  return (step) => {
    if (step > 0 && step % perPass === 0) order = permutation(count, rng);
    const from = (step % perPass) * size;
    return tf.tidy(() => {
      const rows = tf.tensor1d(order.subarray(from, from + size), 'int32');
      return { x: tf.gather(data.x as Tensor, rows), y: tf.gather(data.y, rows) };
    });
  };
}

function batchAt(data: Dataset, start: number, size: number): { x: Tensor; y: Tensor } {
  const x = data.x as Tensor;
  const count = x.shape[0] as number;
  const from = start % Math.max(1, count - size + 1);
  return tf.tidy(() => ({ x: tf.slice(x, from, size), y: tf.slice(data.y, from, size) }));
}

/** Refuses data that `batchAt` cannot slice batches of `size` from (before any tensor is made). */
function checkData(name: string, data: Dataset, size: number, inputShape: ReadonlyArray<number | null> | undefined): void {
  const x = data?.x;
  if (!(x instanceof tf.Tensor) || !(data.y instanceof tf.Tensor)) throw new RsError('DATA_MISMATCH', `darts: ${name} needs one input tensor x and a target tensor y.`);
  const count = x.shape[0] ?? 0;
  if (data.y.shape[0] !== count) throw new RsError('DATA_MISMATCH', `darts: ${name} has ${count} inputs and ${String(data.y.shape[0])} targets.`);
  if (count < size) throw new RsError('DATA_MISMATCH', `darts: ${name} has ${count} rows, fewer than batchSize ${size}.`);
  // Checked here, not by the forward pass: a weight batch that fails after the architecture step would leave alpha changed.
  if (inputShape && (x.rank !== inputShape.length || inputShape.some((d, i) => i > 0 && d !== null && d !== x.shape[i]))) {
    throw new RsError('SHAPE_MISMATCH', `darts: ${name} inputs have shape [${x.shape.join(', ')}], the model expects [${inputShape.map((d) => (d === null ? 'null' : String(d))).join(', ')}].`);
  }
}

function gradientsAt(model: Model, data: { x: Tensor; y: Tensor }, params: string[]): { loss: number; grads: Map<string, Tensor>; state: Map<string, Tensor> } {
  const g = computeGradients(model, [data.x], data.y, softmaxCrossEntropy, { params });
  for (const t of g.activations.values()) t.dispose();
  for (const t of g.activationGrads.values()) t.dispose();
  return { loss: g.loss, grads: g.grads, state: g.state };
}

function readScalar(t: Tensor): number {
  const value = t.dataSync()[0];
  t.dispose();
  return value;
}

function disposeMap(map: Map<string, Tensor>): void {
  for (const t of map.values()) t.dispose();
}

/**
 * DARTS (Liu et al. 2019): bilevel training of a supernet: alternately an architecture step
 * on a validation batch (first order, or second order through one unrolled weight step with the
 * finite-difference Hessian-vector product of the paper's eq. 8) and a weight step on a training
 * batch. Then {@link discretize} keeps the argmax operation of each edge.
 *
 * @example
 * const result = darts(model, { train, validation, steps: 300, order: 'first' });
 */
export function darts(model: Model, options: DartsOptions): DartsResult {
  const mixed = mixedNodes(model);
  if (mixed.length === 0) throw new RsError('INVALID_ARGUMENT', 'darts: the model has no nas.mixed node; build it from dartsSupernet().');
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new RsError('INVALID_BUDGET', `darts: steps must be a positive integer, got ${String(options.steps)}.`);
  const keys = model.paramKeys();
  const archKeys = keys.filter((k) => model.param(k).role === 'arch');
  const weightKeys = keys.filter((k) => model.param(k).trainable && model.param(k).role !== 'arch' && model.param(k).role !== 'state');
  const weightOptimizer = options.weightOptimizer ?? adam({ learningRate: 1e-3 });
  const archOptimizer = options.archOptimizer ?? adam({ learningRate: 3e-4, beta1: 0.5 });
  const batchSize = options.batchSize ?? 64;
  const xi = options.unrolledLearningRate ?? 0.01;
  const order = options.order ?? 'first';
  const hessianStep = options.hessianStep ?? 0.01;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RsError('INVALID_ARGUMENT', `darts: batchSize must be a positive integer, got ${String(batchSize)}.`);
  if (order !== 'first' && order !== 'second') throw new RsError('INVALID_ARGUMENT', `darts: order must be 'first' or 'second', got '${String(order)}'.`);
  if (!Number.isFinite(xi)) throw new RsError('INVALID_ARGUMENT', `darts: unrolledLearningRate must be finite, got ${String(xi)}.`);
  if (!(Number.isFinite(hessianStep) && hessianStep > 0)) throw new RsError('INVALID_ARGUMENT', `darts: hessianStep must be a finite number > 0, got ${String(hessianStep)}.`);
  checkData('train', options.train, batchSize, model.graph.inputs[0]?.shape);
  checkData('validation', options.validation, batchSize, model.graph.inputs[0]?.shape);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new RsError('INVALID_ARGUMENT', `darts: seed must be an integer, got ${String(options.seed)}.`);
  const trainBatchAt = batches(options.train, batchSize, options.seed);
  const validationBatchAt = batches(options.validation, batchSize, options.seed === undefined ? undefined : options.seed + 0x9e3779b9);
  const trainLosses: number[] = [];
  const validationLosses: number[] = [];
  for (let step = 0; step < options.steps; step++) {
    const trainBatch = trainBatchAt(step);
    let validationBatch: { x: Tensor; y: Tensor };
    try {
      validationBatch = validationBatchAt(step);
    } catch (e) {
      tf.dispose([trainBatch.x, trainBatch.y]);
      throw e;
    }
    try {
      // Architecture step.
      let archGrads: Map<string, Tensor>;
      let validationLoss: number;
      if (order === 'first') {
        const g = gradientsAt(model, validationBatch, archKeys);
        disposeMap(g.state);
        archGrads = g.grads;
        validationLoss = g.loss;
      } else {
        ({ grads: archGrads, loss: validationLoss } = unrolledArchGradients(model, trainBatch, validationBatch, weightKeys, archKeys, xi, hessianStep));
      }
      // One DARTS step is atomic: if the weight step fails, the architecture step is undone.
      const before = checkpoint(model, archKeys);
      try {
        try {
          archOptimizer.step(model, archGrads);
        } finally {
          disposeMap(archGrads);
        }
      } catch (e) {
        before.release();
        throw e;
      }
      // Weight step.
      let g: ReturnType<typeof gradientsAt>;
      try {
        g = gradientsAt(model, trainBatch, weightKeys);
      } catch (e) {
        before.restore();
        throw e;
      }
      try {
        weightOptimizer.step(model, g.grads);
        before.release();
      } catch (e) {
        disposeMap(g.state);
        before.restore();
        throw e;
      } finally {
        disposeMap(g.grads);
      }
      if (g.state.size > 0) model.setParamValues(g.state);
      trainLosses.push(g.loss);
      validationLosses.push(validationLoss);
      options.onStep?.({ step, trainLoss: g.loss, validationLoss });
    } finally {
      for (const t of [trainBatch.x, trainBatch.y, validationBatch.x, validationBatch.y]) t.dispose();
    }
  }
  return { weights: architectureWeights(model), candidates: Object.fromEntries(mixed.map((m) => [m.id, m.candidates])), trainLosses, validationLosses };
}

// Second-order DARTS: grad_alpha L_val(w', alpha) - xi * (grad_alpha L_train(w+) - grad_alpha L_train(w-)) / (2 eps),
// with w' = w - xi grad_w L_train(w), w+- = w +- eps grad_w' L_val(w'), eps = 0.01 / |grad_w' L_val(w')|.
function unrolledArchGradients(
  model: Model,
  trainBatch: { x: Tensor; y: Tensor },
  validationBatch: { x: Tensor; y: Tensor },
  weightKeys: string[],
  archKeys: string[],
  xi: number,
  r: number,
): { grads: Map<string, Tensor>; loss: number } {
  const original = new Map(weightKeys.map((k) => [k, tf.clone(model.param(k).value)]));
  const setWeights = (make: (key: string, w: Tensor) => Tensor): void => {
    model.setParamValues(new Map(weightKeys.map((k) => [k, tf.tidy(() => make(k, original.get(k) as Tensor))])));
  };
  try {
    const gTrain = gradientsAt(model, trainBatch, weightKeys);
    disposeMap(gTrain.state);
    setWeights((k, w) => tf.sub(w, tf.mul(gTrain.grads.get(k) as Tensor, xi)));
    disposeMap(gTrain.grads);
    const gVal = gradientsAt(model, validationBatch, [...weightKeys, ...archKeys]);
    disposeMap(gVal.state);
    const norm = Math.sqrt(weightKeys.reduce((sum, k) => sum + readScalar(tf.tidy(() => tf.sum(tf.square(gVal.grads.get(k) as Tensor)))), 0));
    const eps = r / Math.max(norm, 1e-12);
    const archAt = (sign: number): Map<string, Tensor> => {
      setWeights((k, w) => tf.add(w, tf.mul(gVal.grads.get(k) as Tensor, sign * eps)));
      const g = gradientsAt(model, trainBatch, archKeys);
      disposeMap(g.state);
      return g.grads;
    };
    const plus = archAt(1);
    const minus = archAt(-1);
    const grads = new Map(
      archKeys.map((k) => [
        k,
        tf.tidy(() => tf.sub(gVal.grads.get(k) as Tensor, tf.mul(tf.sub(plus.get(k) as Tensor, minus.get(k) as Tensor), xi / (2 * eps)))),
      ]),
    );
    disposeMap(plus);
    disposeMap(minus);
    disposeMap(gVal.grads);
    return { grads, loss: gVal.loss };
  } finally {
    model.setParamValues(original);
  }
}

/** softmax(alpha) of every `nas.mixed` node, by node id. */
export function architectureWeights(model: Model): Record<string, number[]> {
  const weights: Record<string, number[]> = {};
  for (const { id } of mixedNodes(model)) {
    const alpha = model.param(`${id}/alpha`).value;
    const softmax = tf.softmax(alpha);
    weights[id] = Array.from(softmax.dataSync());
    softmax.dispose();
  }
  return weights;
}

/** What {@link discretize} chose. */
export interface Discretized {
  /** Chosen operation per mixed node id. */
  choices: Record<string, string>;
  /** The NAS-Bench-201 string of the cell (first cell's edges), e.g. `|nor_conv_3x3~0|+|...|`. */
  arch: string;
  /** How many edges chose `skip_connect` (the DARTS collapse shows as many). */
  skipCount: number;
}

/**
 * Discretizes a DARTS supernet by one core edit (journaled, technique 'nas'): each `nas.mixed`
 * node is replaced by its strongest candidate (argmax alpha; `none` excluded, as in DARTS) and
 * the other candidates' nodes are removed. Retrain the result from scratch with
 * `Model.create(model.graph, { registry })`.
 *
 * @example
 * const { arch, skipCount } = discretize(model);
 */
export function discretize(model: Model, options: { exclude?: string[] } = {}): Discretized {
  const exclude = new Set(options.exclude ?? ['none']);
  const mixed = mixedNodes(model);
  if (mixed.length === 0) throw new RsError('INVALID_ARGUMENT', 'discretize: the model has no nas.mixed node.');
  const weights = architectureWeights(model);
  const choices: Record<string, string> = {};
  const byNode = new Map(model.graph.nodes.map((n) => [n.id, n]));
  model.edit(
    (tx) => {
      // Last mixed node first: a later edge may read an earlier mixed node (its skip candidate
      // is that node itself), which must still exist when the later edge is bypassed to it;
      // removing the earlier node afterwards rewires every reader, bypassed ones included.
      for (const { id, candidates } of [...mixed].reverse()) {
        const node = byNode.get(id) as GraphDef['nodes'][number];
        let best = -1;
        candidates.forEach((c, k) => {
          if (!exclude.has(c) && (best < 0 || weights[id][k] > weights[id][best])) best = k;
        });
        if (best < 0) throw new RsError('INVALID_ARGUMENT', `discretize: every candidate of '${id}' is excluded.`, { node: id });
        choices[id] = candidates[best];
        tx.removeNode(id, { bypass: node.inputs[best] });
        // Remove the other candidates' own nodes (a candidate's chain is named '<edge>.<op>.*').
        candidates.forEach((c, k) => {
          if (k === best || c === 'skip_connect') return;
          const prefix = `${id}.${c}`;
          const chain = model.graph.nodes.filter((n) => n.id === prefix || n.id.startsWith(`${prefix}.`)).map((n) => n.id);
          for (const nodeId of chain.reverse()) tx.removeNode(nodeId);
        });
      }
    },
    { technique: 'nas', reason: 'DARTS discretization: argmax alpha per edge' },
  );
  const first = NB201_EDGES.map(([to, from]) => choices[`c0.e${to}${from}`] ?? 'none');
  const arch = `|${first[0]}~0|+|${first[1]}~0|${first[2]}~1|+|${first[3]}~0|${first[4]}~1|${first[5]}~2|`;
  return { choices, arch, skipCount: Object.values(choices).filter((c) => c === 'skip_connect').length };
}
