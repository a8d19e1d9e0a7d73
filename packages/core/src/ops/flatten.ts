import { tf } from '../tf';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';
import { knownFeatureDims, product } from './attrs';

/**
 * `[N, d1, ..., dk]` -> `[N, d1 * ... * dk]` in row-major order. Units: each input unit (last
 * axis) maps to its positions in every block of the flattened features.
 *
 * @example
 * { id: 'flat', op: 'flatten', inputs: ['p2'], attrs: {} }
 */
export const flatten: OpSchema<Record<string, never>> = {
  name: 'flatten',
  arity: 1,
  infer(_attrs, [x], ctx) {
    if (x.shape.length < 2) ctx.fail(`expects an input of rank >= 2 (batch and features), got ${formatShape(x.shape)}`);
    const dims = knownFeatureDims(ctx, x.shape);
    return { shape: [x.shape[0], product(dims)], dtype: x.dtype };
  },
  forward([x]) {
    return tf.reshape(x, [x.shape[0], product(x.shape.slice(1))]);
  },
  units(u) {
    const dims = u.inputs[0].shape.slice(1) as number[];
    return u.expand(u.input(0), product(dims.slice(0, -1)));
  },
};
