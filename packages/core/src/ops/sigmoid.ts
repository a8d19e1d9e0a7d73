import { tf } from '../tf';
import type { OpSchema } from './schema';
import { elementwiseFlops, elementwiseInfer } from './elementwise';

/**
 * Logistic sigmoid `1 / (1 + exp(-x))`.
 *
 * @example
 * { id: 'gate', op: 'sigmoid', inputs: ['fc1'], attrs: {} }
 */
export const sigmoid: OpSchema<Record<string, never>> = {
  name: 'sigmoid',
  arity: 1,
  infer: elementwiseInfer,
  forward: ([x]) => tf.sigmoid(x),
  units: 'elementwise',
  flops: elementwiseFlops(1),
};
