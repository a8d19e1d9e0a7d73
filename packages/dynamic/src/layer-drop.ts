import { tf, RsError, softmaxCrossEntropy, type LossFn, type Model, type Optimizer, type Tensor } from '@rs/core';
import { objectiveStep, type ForwardPass, type Rng } from '@rs/core/extend';

/** A residual block that can be skipped: skipping makes `output` take `input`'s value. */
export interface ResidualBlock {
  input: string;
  output: string;
}

/**
 * Residual blocks of a graph from their boundaries: block i runs from `boundaries[i]` to
 * `boundaries[i + 1]`. Every boundary must be a node or input of the graph.
 *
 * @example
 * blocksBetween(model, ['position', 'block0.res2', 'block1.res2']); // two blocks
 */
export function blocksBetween(model: Model, boundaries: string[]): ResidualBlock[] {
  const graph = model.graph;
  for (const id of boundaries) {
    if (!graph.nodes.some((n) => n.id === id) && !graph.inputs.some((i) => i.id === id)) {
      throw new RsError('UNKNOWN_NODE', `No node '${id}' to bound a residual block.`, { node: id });
    }
  }
  if (boundaries.length < 2) throw new RsError('INVALID_ARGUMENT', 'blocksBetween needs at least two boundaries.');
  return boundaries.slice(1).map((output, i) => ({ input: boundaries[i], output }));
}

/** The transformer layers of a `charTransformer` graph (`block{i}.res2`), as residual blocks. */
export function transformerBlocks(model: Model): ResidualBlock[] {
  const graph = model.graph;
  const ends = graph.nodes.filter((n) => /^block\d+\.res2$/.test(n.id)).map((n) => n.id);
  const first = graph.nodes.find((n) => n.id === 'block0.ln1');
  if (!first || ends.length === 0) throw new RsError('INVALID_GRAPH', 'transformerBlocks: not a charTransformer graph (no block0.ln1 / block{i}.res2 nodes).');
  return blocksBetween(model, [first.inputs[0], ...ends]);
}

/** Aliases that skip the blocks not in `keep` (indices into `blocks`). */
export function skipAlias(blocks: ResidualBlock[], keep: number[]): Map<string, string> {
  for (const k of keep) {
    if (!Number.isInteger(k) || k < 0 || k >= blocks.length) throw new RsError('INVALID_ARGUMENT', `Block index ${String(k)} is out of range (0..${blocks.length - 1}).`);
  }
  const kept = new Set(keep);
  return new Map(blocks.flatMap((b, i) => (kept.has(i) ? [] : [[b.output, b.input] as [string, string]])));
}

/**
 * Which blocks to keep to run at `depth` of `total` layers: evenly spaced, starting with the
 * first (fairseq's "every other layer" for half depth).
 *
 * @example
 * keepAtDepth(6, 3); // [0, 2, 4]
 */
export function keepAtDepth(total: number, depth: number): number[] {
  if (!Number.isInteger(depth) || depth < 1 || depth > total) throw new RsError('INVALID_ARGUMENT', `Depth must be an integer in [1, ${total}], got ${String(depth)}.`);
  return Array.from({ length: depth }, (_, i) => Math.floor((i * total) / depth));
}

/** Options of a LayerDrop step. */
export interface LayerDropOptions {
  blocks: ResidualBlock[];
  /** Probability of dropping each block in this step (Fan et al. 2019 use 0.1-0.2). */
  p: number;
  rng: Rng;
  loss?: LossFn;
}

/**
 * The objective of a LayerDrop step: `loss(model output, y)` with the blocks in `alias` skipped
 * (see `skipAlias`). Run it through core's `gradientsOf` / `objectiveStep`, which add every
 * auxiliary loss the ops that run report (e.g. a MoE layer's balance and z-losses).
 *
 * @example
 * const g = gradientsOf(model, layerDropObjective(model, x, y, skipAlias(blocks, [0, 2])));
 */
export function layerDropObjective(model: Model, x: Tensor, y: Tensor, alias: ReadonlyMap<string, string>, loss: LossFn = softmaxCrossEntropy): (pass: ForwardPass) => Tensor {
  const out = model.plan.outputs[0];
  return (pass) => loss(pass.run(x, { targets: [out], alias })[0], y);
}

/**
 * One LayerDrop training step (Fan et al. 2019): every block is dropped independently with
 * probability p for the whole batch; dropped blocks are not computed and get no update.
 * The loss includes the auxiliary losses of the layers that ran (reported in `losses`), and
 * new batchNorm statistics are written once the update succeeded. Returns the loss and the
 * dropped block indices.
 *
 * @example
 * const { loss } = layerDropStep(model, x, y, optimizer, { blocks: transformerBlocks(model), p: 0.2, rng });
 */
export function layerDropStep(model: Model, x: Tensor, y: Tensor, optimizer: Optimizer, options: LayerDropOptions): { loss: number; dropped: number[]; losses: Record<string, number> } {
  if (!(options.p >= 0 && options.p < 1)) throw new RsError('INVALID_ARGUMENT', `LayerDrop probability must lie in [0, 1), got ${String(options.p)}.`);
  const dropped: number[] = [];
  options.blocks.forEach((_, i) => {
    if (options.rng.next() < options.p) dropped.push(i);
  });
  const keep = options.blocks.map((_, i) => i).filter((i) => !dropped.includes(i));
  const alias = skipAlias(options.blocks, keep);
  const { loss, losses } = objectiveStep(model, optimizer, layerDropObjective(model, x, y, alias, options.loss), { rng: options.rng });
  return { loss, dropped, losses };
}

/**
 * Mean loss of the model with some blocks skipped (`alias` from `skipAlias`), in batches.
 *
 * @example
 * const loss = lossWithAlias(model, x, y, skipAlias(blocks, keepAtDepth(4, 2)));
 */
export function lossWithAlias(model: Model, x: Tensor, y: Tensor, alias: ReadonlyMap<string, string>, options: { batchSize?: number; loss?: LossFn } = {}): number {
  const batchSize = options.batchSize ?? 64;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RsError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${String(options.batchSize)}.`);
  const lossFn = options.loss ?? softmaxCrossEntropy;
  const n = x.shape[0];
  let total = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const l = tf.tidy(() => lossFn(model.apply(tf.slice(x, start, size), { targets: [model.plan.outputs[0]], alias }), tf.slice(y, start, size)));
    total += l.dataSync()[0] * size;
    l.dispose();
  }
  return total / n;
}
