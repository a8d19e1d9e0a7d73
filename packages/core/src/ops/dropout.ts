import { tf } from '../tf';
import type { OpSchema } from './schema';
import { checkNumber } from './attrs';
import { elementwiseInfer } from './elementwise';

export interface DropoutAttrs {
  /** Fraction of elements zeroed in training, in [0, 1). */
  rate: number;
}

/**
 * Inverted dropout: in training, zeroes each element with probability `rate` and scales the rest
 * by `1 / (1 - rate)`, seeded from `ctx.rng`; identity in inference.
 *
 * @example
 * { id: 'drop', op: 'dropout', inputs: ['act'], attrs: { rate: 0.1 } }
 */
export const dropout: OpSchema<DropoutAttrs> = {
  name: 'dropout',
  arity: 1,
  infer(attrs, inputs, ctx) {
    if (attrs.rate === undefined) ctx.failAttrs('rate is required (a number in [0, 1))');
    checkNumber(ctx, 'rate', attrs.rate, 0, { min: 0, max: 1, maxExclusive: true });
    return elementwiseInfer(attrs, inputs, ctx);
  },
  forward([x], _params, attrs, ctx) {
    // A clone, not `x` itself: an executor may dispose node outputs independently.
    if (!ctx.training || attrs.rate === 0) return tf.clone(x);
    return tf.dropout(x, attrs.rate, undefined, ctx.rng.seed());
  },
  units: 'elementwise',
};
