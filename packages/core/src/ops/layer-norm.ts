import { tf } from '../tf';
import { formatShape } from '../errors';
import type { ParamSpec } from '../ir/types';
import type { OpSchema } from './schema';
import { checkFloat, checkNumber } from './attrs';
import { elementwiseFlops } from './elementwise';

export interface LayerNormAttrs {
  /** Added to the variance. Default 1e-5. */
  epsilon?: number;
}

/**
 * Layer normalisation over the last axis: `(x - mean) / sqrt(var + epsilon) * gamma + beta`.
 * Units: the input's; gamma and beta are indexed by them. Adding or removing a unit changes the
 * statistics, so such edits are not function-preserving here: the op declares it with
 * `u.normalizes`, and `tx.insertUnits` refuses the group unless `allowFunctionChange` is given.
 *
 * @example
 * { id: 'ln1', op: 'layerNorm', inputs: ['res1'], attrs: {} }
 */
export const layerNorm: OpSchema<LayerNormAttrs> = {
  name: 'layerNorm',
  arity: 1,
  infer(attrs, [x], ctx) {
    checkNumber(ctx, 'epsilon', attrs.epsilon, 1e-5, { min: 0, max: Infinity, minExclusive: true });
    checkFloat(ctx, x);
    if (x.shape.length < 2 || x.shape[x.shape.length - 1] === null) {
      ctx.fail(`expects an input of rank >= 2 with a known last axis, got ${formatShape(x.shape)}`);
    }
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(_attrs, [x]) {
    const d = x.shape[x.shape.length - 1] as number;
    const specs: Record<string, ParamSpec> = {
      gamma: { shape: [d], init: { kind: 'ones' }, role: 'weight' },
      beta: { shape: [d], init: { kind: 'zeros' }, role: 'bias' },
    };
    return specs;
  },
  forward([x], params, attrs) {
    const { mean, variance } = tf.moments(x, -1, true);
    const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, attrs.epsilon ?? 1e-5)));
    return tf.add(tf.mul(normalized, params.gamma), params.beta);
  },
  units(u) {
    const l = u.input(0);
    // consume() marks gamma/beta role 'in' (zero on insert); the core initialises inserted norm params from their ParamSpec.
    u.consume(l, 'gamma', 0);
    u.consume(l, 'beta', 0);
    return u.normalizes(l, 'mean and variance are taken over them');
  },
  // mean, sub, square, mean, mul by rsqrt, mul gamma, add beta (the rsqrt is per row).
  flops: elementwiseFlops(7),
};
