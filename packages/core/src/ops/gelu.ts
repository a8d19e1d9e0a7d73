import { tf } from '../tf';
import type { OpSchema } from './schema';
import { elementwiseFlops, elementwiseInfer } from './elementwise';
import { backendHasKernel } from '../backend';

/**
 * Kernels a backend may register to run GELU (below) in one pass: `RsGelu` (input `x`) and its
 * gradient `RsGeluGrad` (inputs `dy`, `x`: dy * d gelu / dx), float32. Without both, gelu is the
 * sequence of tfjs ops below and its gradient comes from autodiff. @rs/backend-native and @rs/backend-wasm register them.
 */
export const GELU_KERNEL = 'RsGelu';
export const GELU_GRAD_KERNEL = 'RsGeluGrad';

const fusedGelu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x: saved }) as tf.Tensor,
  };
}) as never) as unknown as (x: tf.Tensor) => tf.Tensor;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * Gaussian error linear unit, tanh approximation (Hendrycks & Gimpel 2016, as in GPT-2):
 * `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`. Within ~1e-3 of the erf form. Built from
 * tf ops (tfjs has no Gelu kernel) so gradients exist on every backend.
 *
 * @example
 * { id: 'act', op: 'gelu', inputs: ['fc1'], attrs: {} }
 */
export const gelu: OpSchema<Record<string, never>> = {
  name: 'gelu',
  arity: 1,
  infer: elementwiseInfer,
  forward([x]) {
    if (x.dtype === 'float32' && backendHasKernel(GELU_KERNEL) && backendHasKernel(GELU_GRAD_KERNEL)) return fusedGelu(x);
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), SQRT_2_OVER_PI);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  },
  units: 'elementwise',
  // cube (2), mul, add, mul, tanh, add, mul, mul.
  flops: elementwiseFlops(9),
};
