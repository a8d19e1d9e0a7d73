import { tf } from '../tf';
import { formatShape } from '../errors';
import type { ParamSpec } from '../ir/types';
import type { OpSchema } from './schema';
import { checkFloat, checkNumber, checkOptionalBoolean } from './attrs';
import { elementwiseFlops } from './elementwise';

export interface BatchNormAttrs {
  /** Added to the variance. Default 1e-3. */
  epsilon?: number;
  /** Weight of the old moving statistics in each update. Default 0.99. */
  momentum?: number;
  /**
   * false: `gamma` and `beta` stay at 1 and 0 (not trainable), like PyTorch's `affine=False`
   * (DARTS' search cells use it). Default true.
   */
  affine?: boolean;
}

/**
 * Batch normalisation over the channel (last) axis. Training normalises with the batch statistics
 * (over every axis but the last) and updates `movingMean` / `movingVariance` through
 * `ctx.setState`: `new = momentum * old + (1 - momentum) * batch`. Inference uses the moving
 * statistics. Units: the input's channels index all four params.
 *
 * @example
 * { id: 'bn1', op: 'batchNorm', inputs: ['c1'], attrs: { momentum: 0.9 } }
 */
export const batchNorm: OpSchema<BatchNormAttrs> = {
  name: 'batchNorm',
  arity: 1,
  infer(attrs, [x], ctx) {
    checkNumber(ctx, 'epsilon', attrs.epsilon, 1e-3, { min: 0, max: Infinity, minExclusive: true });
    checkNumber(ctx, 'momentum', attrs.momentum, 0.99, { min: 0, max: 1 });
    checkOptionalBoolean(ctx, 'affine', attrs.affine);
    checkFloat(ctx, x);
    if (x.shape.length < 2 || x.shape[x.shape.length - 1] === null) {
      ctx.fail(`expects an input of rank >= 2 with known channels (last axis), got ${formatShape(x.shape)}`);
    }
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const c = x.shape[x.shape.length - 1] as number;
    const affine = attrs.affine !== false;
    const specs: Record<string, ParamSpec> = {
      gamma: { shape: [c], init: { kind: 'ones' }, role: 'weight', trainable: affine },
      beta: { shape: [c], init: { kind: 'zeros' }, role: 'bias', trainable: affine },
      movingMean: { shape: [c], init: { kind: 'zeros' }, role: 'state', trainable: false },
      movingVariance: { shape: [c], init: { kind: 'ones' }, role: 'state', trainable: false },
    };
    return specs;
  },
  forward([x], params, attrs, ctx) {
    const epsilon = attrs.epsilon ?? 1e-3;
    let mean = params.movingMean;
    let variance = params.movingVariance;
    if (ctx.training) {
      const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
      const moments = tf.moments(x, axes);
      mean = moments.mean;
      variance = moments.variance;
      const momentum = attrs.momentum ?? 0.99;
      // The moving statistics are not part of the loss, so autodiff prunes these ops; kept
      // because the executor writes them back after the enclosing tidy has ended.
      const update = (old: tf.Tensor, batch: tf.Tensor) =>
        tf.tidy(() => tf.keep(tf.add(tf.mul(old, momentum), tf.mul(batch, 1 - momentum))));
      ctx.setState('movingMean', update(params.movingMean, mean));
      ctx.setState('movingVariance', update(params.movingVariance, variance));
    }
    const scale = tf.mul(tf.rsqrt(tf.add(variance, epsilon)), params.gamma);
    return tf.add(tf.mul(tf.sub(x, mean), scale), params.beta);
  },
  units(u) {
    const l = u.input(0);
    // consume() marks these role 'in' (zero on insert); the core initialises inserted norm params from their ParamSpec.
    for (const name of ['gamma', 'beta', 'movingMean', 'movingVariance']) u.consume(l, name, 0);
    return l;
  },
  // Inference: sub, mul, add per element (the per-channel scale is folded).
  flops: elementwiseFlops(3),
};
