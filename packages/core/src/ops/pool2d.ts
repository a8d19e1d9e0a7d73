import { tf } from '../tf';
import type { OpSchema } from './schema';
import { checkPadding, checkPair, inferWindow, pair } from './spatial';
import type { Padding, Pair } from './spatial';

export interface Pool2dAttrs {
  poolSize: Pair;
  /** Default: `poolSize`. */
  strides?: Pair;
  /** Default 'valid'. */
  padding?: Padding;
}

/** The schema shared by the 2-D pooling ops; only the reduction differs. */
export function pool2dSchema(name: string, reduce: typeof tf.maxPool): OpSchema<Pool2dAttrs> {
  return {
    name,
    arity: 1,
    infer(attrs, [x], ctx) {
      const window = checkPair(ctx, 'poolSize', attrs.poolSize);
      const strides = checkPair(ctx, 'strides', attrs.strides, window);
      const padding = checkPadding(ctx, attrs.padding);
      const { ho, wo, c } = inferWindow(ctx, x, window, strides, padding, 'pool window');
      return { shape: [x.shape[0], ho, wo, c], dtype: 'float32' };
    },
    forward([x], _params, attrs) {
      const window = pair(attrs.poolSize, [1, 1]);
      return reduce(x as tf.Tensor4D, window, pair(attrs.strides, window), attrs.padding ?? 'valid');
    },
    // Pooling is per channel, so the output channels are the input's.
    units: (u) => u.input(0),
    // One comparison / addition per window element of every output element.
    flops(attrs, _inputs, output) {
      const [ph, pw] = pair(attrs.poolSize, [1, 1]);
      const [, ho, wo, c] = output.shape as number[];
      return ho * wo * c * ph * pw;
    },
  };
}
