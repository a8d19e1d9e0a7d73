import { tf } from '../tf';
import type { OpSchema } from './schema';
import { elementwiseInfer, elementwiseFlops } from './elementwise';

/** max(x, 0). */
export const relu: OpSchema<Record<string, never>> = {
  name: 'relu',
  arity: 1,
  infer: elementwiseInfer,
  forward: ([x]) => tf.relu(x),
  units: 'elementwise',
  flops: elementwiseFlops(1),
};
