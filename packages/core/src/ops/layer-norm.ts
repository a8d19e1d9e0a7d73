import { tf } from '../tf';
import { formatShape } from '../errors';
import type { ParamSpec } from '../ir/types';
import type { OpSchema } from './schema';
import { checkFloat, checkNumber } from './attrs';
import { elementwiseFlops } from './elementwise';
import { backendHasKernel } from '../backend';

/**
 * Kernels a backend may register to run layer normalisation in one pass each way, float32:
 * `RsLayerNorm` (inputs `x` [..., d], `gamma` [d], `beta` [d]; attr `epsilon`) returns `y` (x's
 * shape), and each row's `mean` and `rstd` = 1 / sqrt(variance + epsilon) (both [rows], rows =
 * x's size / d; the variance divides by d, as tf.moments does); `RsLayerNormGrad` (inputs `dy`,
 * `x`, `gamma`, `mean`, `rstd`) returns `dx` (x's shape), `dgamma` and `dbeta` ([d], summed over
 * rows). Without both, layerNorm is the sequence of tfjs ops below and its gradient comes from
 * autodiff. @rs/backend-native and @rs/backend-wasm register them.
 */
export const LAYER_NORM_KERNEL = 'RsLayerNorm';
export const LAYER_NORM_GRAD_KERNEL = 'RsLayerNormGrad';

function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const f = tf.customGrad(((xs: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, mean, rstd] = tf.engine().runKernel(LAYER_NORM_KERNEL, { x: xs, gamma: g, beta: b }, { epsilon } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([xs, g, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [sx, sg, sm, sr]: tf.Tensor[]) => tf.engine().runKernel(LAYER_NORM_GRAD_KERNEL, { dy, x: sx, gamma: sg, mean: sm, rstd: sr }) as tf.Tensor[],
    };
  }) as never) as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  return f(x, gamma, beta);
}

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
    const d = x.shape[x.shape.length - 1];
    if (x.dtype === 'float32' && params.gamma.shape[0] === d && backendHasKernel(LAYER_NORM_KERNEL) && backendHasKernel(LAYER_NORM_GRAD_KERNEL)) {
      return fusedLayerNorm(x, params.gamma, params.beta, attrs.epsilon ?? 1e-5);
    }
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
