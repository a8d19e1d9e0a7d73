import { tf, RsError, softmaxCrossEntropy, type LossFn, type Model, type NodeDef, type Optimizer, type Tensor } from '@rs/core';
import { execute, objectiveStep, type ForwardPass, type RunOptions } from '@rs/core/extend';
import type { ResidualBlock } from './layer-drop';

/** A residual block with a gate: rows whose gate logit is > 0 compute the block, others skip it. */
export interface GatedBlock extends ResidualBlock {
  /** Node whose output `[n, 1]` is the gate logit (computed from the block input). */
  gate: string;
}

/**
 * Adds a SkipNet-style gate (Wang et al. 2018) to a residual block: a dense layer with one unit
 * on the (flattened) block input. Its bias starts at `bias` (default 2: gates start open). The
 * gate node is added as an extra graph output so the graph stays fully used; execution with
 * `gatedPredict` / `gatedStep` reads it. One journaled edit.
 *
 * @example
 * const gated = addSkipGate(model, { input: 'r1', output: 'res1' });
 */
export function addSkipGate(model: Model, block: ResidualBlock, options: { id?: string; bias?: number } = {}): GatedBlock {
  const graph = model.graph;
  for (const id of [block.input, block.output]) {
    if (!graph.nodes.some((n) => n.id === id) && !graph.inputs.some((i) => i.id === id)) {
      throw new RsError('UNKNOWN_NODE', `addSkipGate: no node '${id}'.`, { node: id });
    }
  }
  const id = options.id ?? `gate:${block.output}`;
  const rank = model.validated.infos.get(block.input)?.shape.length ?? 2;
  const nodes: NodeDef[] = [];
  let x = block.input;
  if (rank > 2) {
    nodes.push({ id: `${id}.flatten`, op: 'flatten', inputs: [x], attrs: {} });
    x = `${id}.flatten`;
  }
  nodes.push({ id, op: 'dense', inputs: [x], attrs: { units: 1 } });
  const outputs = graph.outputs;
  const biasValue = options.bias ?? 2;
  if (typeof biasValue !== 'number' || !Number.isFinite(biasValue)) throw new RsError('INVALID_ARGUMENT', `addSkipGate: bias must be a finite number, got ${String(biasValue)}.`);
  const bias = tf.fill([1], biasValue);
  try {
    model.edit(
      (tx) => {
        nodes.forEach((n, i) => tx.insertNode(n, i === nodes.length - 1 ? { params: { bias } } : {}));
        tx.setOutputs([...outputs, id]);
      },
      { technique: 'dynamic', reason: `skip gate on block '${block.output}'` },
    );
  } finally {
    bias.dispose();
  }
  return { ...block, gate: id };
}

// Forward: the hard gate [p > 0.5]; backward: the gradient passes to p unchanged.
const straightThrough = tf.customGrad(((p: Tensor) => ({
  value: tf.cast(tf.greater(p, 0.5), 'float32'),
  gradFunc: (dy: Tensor) => dy,
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (p: Tensor) => Tensor;

function mainOutput(model: Model, gates: GatedBlock[]): string {
  const gateIds = new Set(gates.map((g) => g.gate));
  const out = model.plan.outputs.find((o) => !gateIds.has(o));
  if (!out) throw new RsError('INVALID_GRAPH', 'The model has no output other than its gates.');
  return out;
}

/**
 * One training step with hard gates and a straight-through estimator (SkipNet's supervised
 * phase): forward uses gate = [logit > 0]; gradients flow through sigmoid(logit). `cost` adds
 * `cost * mean(gate probability)` per block, pushing gates to close. Auxiliary losses of the
 * layers that run are part of the loss; new batchNorm statistics are written after the update.
 */
export function gatedStep(model: Model, x: Tensor, y: Tensor, optimizer: Optimizer, gates: GatedBlock[], options: { cost?: number; loss?: LossFn } = {}): number {
  const out = mainOutput(model, gates);
  const byOutput = new Map(gates.map((g) => [g.output, g]));
  const lossFn = options.loss ?? softmaxCrossEntropy;
  const cost = options.cost ?? 0;
  const objective = (pass: ForwardPass): Tensor => {
    const values = new Map<string, Tensor>();
    const probs: Tensor[] = [];
    const logits = pass.run(x, {
      targets: [out],
      values,
      intercept: (step, inputs, run) => {
        const g = byOutput.get(step.node.id);
        if (!g) return undefined;
        const skip = values.get(g.input) as Tensor;
        const full = run(inputs);
        const gateLogit = pass.run(x, { targets: [g.gate], values })[0];
        const p = tf.sigmoid(gateLogit);
        probs.push(p);
        const ste = straightThrough(p);
        const shape = [ste.shape[0], ...full.shape.slice(1).map(() => 1)];
        return tf.add(skip, tf.mul(tf.reshape(ste, shape), tf.sub(full, skip)));
      },
    })[0];
    let total = lossFn(logits, y);
    for (const p of probs) total = tf.add(total, tf.mul(tf.mean(p), cost));
    return total;
  };
  return objectiveStep(model, optimizer, objective).loss;
}

/** What `gatedPredict` returns. Dispose `output`. */
export interface GatedResult {
  output: Tensor;
  /** Rows that computed each block (`gates` order). */
  computedRows: number[];
}

/**
 * Inference with conditional computation: at each gated block only the rows whose gate is on
 * are gathered and run through the block; the other rows pass the block input through.
 * Rows stay in input order.
 *
 * @example
 * const { output, computedRows } = gatedPredict(model, x, [gated]);
 */
export function gatedPredict(model: Model, x: Tensor, gates: GatedBlock[]): GatedResult {
  const out = mainOutput(model, gates);
  const byOutput = new Map(gates.map((g) => [g.output, g]));
  const computed = new Map<string, number>();
  const infer = (feed: Tensor, params: Map<string, Tensor>, targets: string[], values: Map<string, Tensor>, intercept?: RunOptions['intercept']): Tensor => {
    const result = execute(model.plan, [feed], params, { training: false, rng: model.rng, targets, values, intercept });
    for (const t of result.state.values()) t.dispose();
    return result.outputs[0];
  };
  const output = tf.tidy(() => {
    const params = model.forwardParams();
    const values = new Map<string, Tensor>();
    return infer(x, params, [out], values, (step, _inputs, _run) => {
      const g = byOutput.get(step.node.id);
      if (!g) return undefined;
      const skip = values.get(g.input) as Tensor;
      const gateLogit = infer(x, params, [g.gate], values);
      const on = gateLogit.dataSync();
      const rows: number[] = [];
      const off: number[] = [];
      for (let i = 0; i < on.length; i++) (on[i] > 0 ? rows : off).push(i);
      computed.set(g.output, rows.length);
      if (rows.length === 0) return skip;
      // Run the block's interior on the gated rows only: a fresh value map seeded with them.
      const sub = tf.gather(skip, tf.tensor1d(rows, 'int32'));
      const blockValues = new Map<string, Tensor>([[g.input, sub]]);
      const inner = infer(tf.gather(x, tf.tensor1d(rows, 'int32')), params, [g.output], blockValues);
      if (off.length === 0) return inner;
      const merged = tf.concat([inner, tf.gather(skip, tf.tensor1d(off, 'int32'))], 0);
      const inverse = new Int32Array(on.length);
      [...rows, ...off].forEach((r, i) => (inverse[r] = i));
      return tf.gather(merged, tf.tensor1d(inverse, 'int32'));
    });
  });
  return { output, computedRows: gates.map((g) => computed.get(g.output) ?? 0) };
}
