import { tf, type Tensor } from '../tf';
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
    else y = tf.fused.matMul({ a: flat as tf.Tensor2D, b: params.kernel as tf.Tensor2D, bias: attrs.useBias === false ? undefined : params.bias, activation: activation ?? 'linear' });
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
