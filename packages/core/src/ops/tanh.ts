import { tf } from '../tf';
import type { OpSchema } from './schema';
import { elementwiseFlops, elementwiseInfer } from './elementwise';

/**
 * Hyperbolic tangent.
 *
 * @example
 * { id: 'act', op: 'tanh', inputs: ['fc1'], attrs: {} }
 */
export const tanh: OpSchema<Record<string, never>> = {
  name: 'tanh',
  arity: 1,
  infer: elementwiseInfer,
  forward: ([x]) => tf.tanh(x),
  units: 'elementwise',
  flops: elementwiseFlops(1),
};
