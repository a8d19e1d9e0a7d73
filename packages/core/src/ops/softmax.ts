import { tf } from '../tf';
import type { OpSchema } from './schema';
import { elementwiseFlops, elementwiseInfer } from './elementwise';
import { axisOf, resolveAxis } from './attrs';

export interface SoftmaxAttrs {
  /** Default -1 (the feature axis). The batch axis is refused. */
  axis?: number;
}

/**
 * Softmax along `axis`. Units are elementwise; adding or removing a unit on the softmax axis
 * changes every other output (the normaliser changes), so along the feature (last) axis the op
 * declares it with `u.normalizes` and `tx.insertUnits` refuses the group unless
 * `allowFunctionChange` is given.
 *
 * @example
 * { id: 'probs', op: 'softmax', inputs: ['logits'], attrs: {} }
 */
export const softmax: OpSchema<SoftmaxAttrs> = {
  name: 'softmax',
  arity: 1,
  infer(attrs, inputs, ctx) {
    resolveAxis(ctx, attrs.axis, inputs[0].shape);
    return elementwiseInfer(attrs, inputs, ctx);
  },
  forward([x], _params, attrs) {
    const axis = axisOf(attrs.axis, x.rank);
    if (axis === x.rank - 1) return tf.softmax(x);
    // tfjs' Softmax kernel only supports the last axis; compose it (stable form) elsewhere.
    const shifted = tf.sub(x, tf.max(x, axis, true));
    const e = tf.exp(shifted);
    return tf.div(e, tf.sum(e, axis, true));
  },
  units(u) {
    const l = u.merge(u.input(0));
    const rank = u.inputs[0].shape.length;
    if (axisOf(u.attrs.axis, rank) === rank - 1) u.normalizes(l, 'the softmax normaliser sums over them');
    return l;
  },
  // max, sub, exp, sum, div.
  flops: elementwiseFlops(5),
};
