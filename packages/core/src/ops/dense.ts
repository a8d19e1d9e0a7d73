import { tf, type Tensor } from '../tf';
import { backendHasKernel } from '../backend';
import { recordingGradients } from '../train/tape';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';
import { sizeOf, concrete } from './schema';

export interface DenseAttrs {
  /** Output features. */
  units: number;
  /** Default true. */
  useBias?: boolean;
  /**
   * Set by the executor only, never stored in a graph: the node's single consumer is a relu that
   * this forward applies too (inference; see `execute`).
   */
  fusedActivation?: 'relu';
}

/**
 * Core's dense kernel for inference: `activation(a @ b + bias)` with `a` [rows, in], `b`
 * [in, units] and an optional `bias` [units]; the inputs and attributes (`transposeA` and
 * `transposeB` false, `activation` 'linear' or 'relu', `leakyreluAlpha`) of tfjs's
 * `_FusedMatMul`, with rank-2 operands. A backend whose `_FusedMatMul` takes rank-2 operands
 * registers it under this name too. Without it, `_FusedMatMul` runs on rank-3 views, as tfjs's
 * own op passes them (tfjs-backend-wasm's kernel reads its operands as rank 3), and those three
 * reshapes per layer were most of a small network's JavaScript time: a 4-4-4-4 MLP's inference
 * took 18.7 us per call on the native backend with them and 7.7 us without.
 */
export const DENSE_KERNEL = 'RsDense';

/**
 * `activation(x @ kernel + bias)` for inference, as one kernel call. `tf.fused.matMul` runs the
 * same kernel, but wraps it in a custom gradient (a scope, saved tensors, a gradient closure)
 * that nothing uses outside a gradient tape, and that wrapper took long to reach V8's
 * optimising compiler: a [2, 2] product cost 60-90 us per call over its first thousand calls
 * (3-8 us after).
 */
function fusedDense(x: Tensor, kernel: Tensor, bias: Tensor | undefined, activation: 'linear' | 'relu'): Tensor {
  const attrs = { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0.2 } as unknown as tf.NamedAttrMap;
  if (backendHasKernel(DENSE_KERNEL)) return tf.engine().runKernel(DENSE_KERNEL, bias ? { a: x, b: kernel, bias } : { a: x, b: kernel }, attrs) as Tensor;
  const [rows, inFeatures] = x.shape as [number, number];
  const units = kernel.shape[1] as number;
  const a = tf.reshape(x, [1, rows, inFeatures]);
  const b = tf.reshape(kernel, [1, inFeatures, units]);
  const out = tf.engine().runKernel('_FusedMatMul', bias ? { a, b, bias } : { a, b }, attrs) as Tensor;
  const y = tf.reshape(out, [rows, units]);
  tf.dispose([a, b, out]);
  return y;
}

/** Fully connected layer over the last axis: `y = x @ kernel + bias`. Units: output features. */
export const dense: OpSchema<DenseAttrs> = {
  name: 'dense',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (!Number.isInteger(attrs.units) || attrs.units < 1) ctx.failAttrs(`units must be a positive integer, got ${String(attrs.units)}`);
    const last = x.shape[x.shape.length - 1];
    if (x.shape.length < 2 || last === null) ctx.fail(`expects an input of rank >= 2 with a known last axis, got ${formatShape(x.shape)}`);
    if (x.dtype !== 'float32') ctx.fail(`expects float32 input, got ${x.dtype}`);
    return { shape: [...x.shape.slice(0, -1), attrs.units], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const fanIn = x.shape[x.shape.length - 1] as number;
    const specs: ReturnType<NonNullable<OpSchema<DenseAttrs>['params']>> = {
      kernel: { shape: [fanIn, attrs.units], init: { kind: 'glorotUniform', fanIn, fanOut: attrs.units } },
    };
    if (attrs.useBias !== false) specs.bias = { shape: [attrs.units], init: { kind: 'zeros' }, role: 'bias' };
    return specs;
  },
  forward([x], params, attrs) {
    const inFeatures = x.shape[x.shape.length - 1];
    const flat = x.rank === 2 ? x : tf.reshape(x, [-1, inFeatures]);
    // Inference: the bias fused into the matmul (one pass over the output instead of two).
    // Under a gradient tape, a matmul plus an add: tfjs's fused gradient is much slower.
    let y: Tensor;
    const activation = attrs.fusedActivation;
    if (recordingGradients()) {
      y = tf.matMul(flat as tf.Tensor2D, params.kernel as tf.Tensor2D);
      if (attrs.useBias !== false) y = tf.add(y, params.bias);
      if (activation === 'relu') y = tf.relu(y);
    } else if (attrs.useBias === false && activation === undefined) y = tf.matMul(flat as tf.Tensor2D, params.kernel as tf.Tensor2D);
    else y = fusedDense(flat, params.kernel, attrs.useBias === false ? undefined : params.bias, activation ?? 'linear');
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), attrs.units]);
  },
  units(u) {
    u.consume(u.input(0), 'kernel', 0);
    const params = [{ param: 'kernel', axis: 1 }];
    if (u.attrs.useBias !== false) params.push({ param: 'bias', axis: 0 });
    return u.source('out', u.attrs.units, params);
  },
  flops(attrs, [x]) {
    const shape = concrete(x.shape);
    const rows = sizeOf(shape.slice(0, -1));
    return rows * (2 * shape[shape.length - 1] * attrs.units + (attrs.useBias !== false ? attrs.units : 0));
  },
  syncAttrs(attrs, shapes) {
    return { ...attrs, units: shapes.kernel[1] };
  },
};
