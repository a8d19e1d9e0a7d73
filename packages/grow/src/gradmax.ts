import { RsError, computeGradients, disposeGradients, tf, type LossFn, type LossName, type Model, type Tensor } from '@rs/core';
import { resolveLoss } from '@rs/core/extend';
import { checkCount } from './net2net';

/** Top-k left singular vectors of M (rows x cols) by power iteration on M M^T with deflation. */
function topLeftSingularVectors(m: Float64Array, rows: number, cols: number, k: number): Float64Array[] {
  const mmt = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += m[i * cols + c] * m[j * cols + c];
      mmt[i * rows + j] = s;
      mmt[j * rows + i] = s;
    }
  const vectors: Float64Array[] = [];
  for (let v = 0; v < k; v++) {
    let x = Float64Array.from({ length: rows }, (_, i) => Math.sin(i * 12.9898 + v * 78.233) + 1e-3);
    for (let iter = 0; iter < 200; iter++) {
      const y = new Float64Array(rows);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        for (let j = 0; j < rows; j++) s += mmt[i * rows + j] * x[j];
        y[i] = s;
      }
      // Deflate: remove components along the vectors already found.
      for (const u of vectors) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += y[i] * u[i];
        for (let i = 0; i < rows; i++) y[i] -= d * u[i];
      }
      const norm = Math.hypot(...y) || 1;
      for (let i = 0; i < rows; i++) y[i] /= norm;
      x = y;
    }
    vectors.push(x);
  }
  return vectors;
}

export interface GradMaxOptions {
  /** Batch the gradient statistics are computed on. */
  batch: { x: Tensor | Tensor[]; y: Tensor };
  loss?: LossName | LossFn;
  /** Norm of each new unit's outgoing weight vector (default 0.01). */
  scale?: number;
  /**
   * Bias of the new units (default 0). With ReLU a pre-activation of exactly 0 has zero
   * gradient in TensorFlow.js, so new units would never start learning; a tiny positive bias
   * (e.g. 1e-6) opens the gradient while changing outputs by at most bias * scale.
   */
  bias?: number;
  reason?: string;
}

/**
 * GradMax-style growth (Evci et al. 2022): new units get zero incoming weights, so the function
 * is unchanged, and outgoing weights along the top singular vectors of E[dL/dz_next x^T], which
 * maximises the gradient norm of their incoming weights. Applies to a dense group read by one
 * dense layer, with an activation that maps 0 to 0 (relu, tanh...).
 *
 * @example
 * growGradMax(model, 'fc1', 8, { batch: { x, y } });
 */
export function growGradMax(model: Model, groupId: string, count: number, options: GradMaxOptions): { singularDirections: number } {
  checkCount(count);
  for (const name of ['scale', 'bias'] as const) {
    const value = options[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && (name === 'bias' || value >= 0))) {
      throw new RsError('INVALID_ARGUMENT', `${name} must be a finite number${name === 'scale' ? ' >= 0' : ''}, got ${String(value)}.`, { [name]: value });
    }
  }
  const group = model.group(groupId);
  if (group.frozen) throw new RsError('FROZEN_GROUP', `Group '${group.id}' cannot grow: ${group.frozen.join('; ')}.`, { group: group.id });
  const producers = group.params.filter((p) => p.role === 'out' && model.param(p.param).value.rank === 2);
  const consumers = group.params.filter((p) => p.role === 'in' && model.param(p.param).value.rank === 2);
  if (producers.length !== 1 || consumers.length !== 1 || consumers[0].outer.length > 0 || consumers[0].offset !== 0) {
    throw new RsError('INVALID_ARGUMENT', `GradMax growth needs a group produced by one dense kernel and read by one dense kernel; '${group.id}' has ${producers.length} producer(s) and ${consumers.length} consumer(s). Use widen() for other groups.`, { group: group.id });
  }
  const producerNode = producers[0].param.slice(0, producers[0].param.lastIndexOf('/'));
  const consumerNode = consumers[0].param.slice(0, consumers[0].param.lastIndexOf('/'));
  const inputNode = model.graph.nodes.find((n) => n.id === producerNode)?.inputs[0] as string;
  const xs = Array.isArray(options.batch.x) ? options.batch.x : [options.batch.x];
  const inputIndex = model.plan.inputs.findIndex((i) => i.id === inputNode);
  const g = computeGradients(model, xs, options.batch.y, resolveLoss(options.loss ?? 'softmaxCrossEntropy'), {
    training: false,
    taps: { activations: inputIndex >= 0 ? [] : [inputNode], gradients: [consumerNode] },
  });
  let m: Float64Array;
  let rows: number;
  let cols: number;
  try {
    const delta = g.activationGrads.get(consumerNode) as Tensor; // [B, out_next]
    // The layer's input: the graph input itself, or a tapped node.
    const x = inputIndex >= 0 ? xs[inputIndex] : (g.activations.get(inputNode) as Tensor);
    const product = tf.tidy(() => tf.matMul(delta, x, true, false)); // [out_next, in]
    [rows, cols] = product.shape as [number, number];
    m = Float64Array.from(product.dataSync());
    product.dispose();
  } finally {
    disposeGradients(g);
  }
  const directions = topLeftSingularVectors(m, rows, cols, Math.min(count, rows));
  const scale = options.scale ?? 1e-2;
  const outgoing = new Float32Array(count * rows);
  for (let j = 0; j < count; j++) {
    const u = directions[j % directions.length];
    for (let r = 0; r < rows; r++) outgoing[j * rows + r] = scale * u[r];
  }
  const values: Record<string, Tensor> = { [consumers[0].param]: tf.tensor2d(outgoing, [count, rows]) };
  const biasKey = group.params.find((p) => p.role === 'out' && model.param(p.param).value.rank === 1 && model.param(p.param).role === 'bias')?.param;
  if (biasKey && options.bias) values[biasKey] = tf.fill([count], options.bias);
  try {
    model.edit((tx) => tx.insertUnits(group.id, count, { incoming: 'zeros', values }), {
      technique: 'grow',
      reason: options.reason ?? `GradMax: ${count} unit(s) into '${group.id}' with zero fan-in, fan-out along top singular directions`,
      details: { method: 'gradmax' },
    });
  } finally {
    tf.dispose(Object.values(values));
  }
  return { singularDirections: directions.length };
}
