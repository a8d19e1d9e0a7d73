import { tf } from '../tf';
import { formatShape } from '../errors';
import type { InferContext } from './schema';
import type { OpSchema } from './schema';
import { knownFeatureDims, product, show } from './attrs';

export interface ReshapeAttrs {
  /** Target shape without the batch dimension; at most one entry may be -1 (inferred). */
  shape: number[];
}

/** Resolves the -1 of `target` for `total` elements, or returns a reason it cannot. */
function resolveShape(target: number[], total: number): number[] | string {
  const free = target.indexOf(-1);
  const known = product(target.filter((d) => d !== -1));
  if (free < 0) return known === total ? [...target] : `${total} elements do not fit ${show(target)} (${known} elements)`;
  if (total % known !== 0) return `${total} elements are not divisible by ${known} to resolve the -1 in ${show(target)}`;
  const out = [...target];
  out[free] = total / known;
  return out;
}

function checkTarget(ctx: InferContext, value: unknown): number[] {
  const ok =
    Array.isArray(value) &&
    value.length >= 1 &&
    value.every((d) => typeof d === 'number' && Number.isInteger(d) && (d >= 1 || d === -1)) &&
    value.filter((d) => d === -1).length <= 1;
  if (!ok) ctx.failAttrs(`shape must be a non-empty array of positive integers with at most one -1 (batch excluded), got ${show(value)}`);
  return value as number[];
}

/**
 * Reshapes everything after the batch dimension. Units pass through when the last axis keeps its
 * size (row-major order then keeps every feature in place); otherwise the input's units are frozen.
 * Prefer -1 for the last entry of a pass-through reshape: an explicit size goes stale when units
 * are added or removed upstream.
 *
 * @example
 * { id: 'tokens', op: 'reshape', inputs: ['c3'], attrs: { shape: [-1, 64] } }
 */
export const reshape: OpSchema<ReshapeAttrs> = {
  name: 'reshape',
  arity: 1,
  infer(attrs, [x], ctx) {
    const target = checkTarget(ctx, attrs.shape);
    if (x.shape.length < 1) ctx.fail(`expects an input with a batch dimension, got ${formatShape(x.shape)}`);
    const total = product(knownFeatureDims(ctx, x.shape));
    const resolved = resolveShape(target, total);
    if (typeof resolved === 'string') return ctx.fail(`cannot reshape ${formatShape(x.shape)} to ${formatShape([null, ...target])}: ${resolved}`);
    return { shape: [x.shape[0], ...resolved], dtype: x.dtype };
  },
  forward([x], _params, attrs) {
    return tf.reshape(x, [x.shape[0], ...attrs.shape]);
  },
  units(u) {
    const inShape = u.inputs[0].shape;
    const outShape = u.output.shape;
    const inLast = inShape.length > 1 ? inShape[inShape.length - 1] : null;
    const outLast = outShape[outShape.length - 1] as number;
    // Units pass only when the last entry is -1: an explicit size would go stale after an edit.
    const target = u.attrs.shape;
    if (inLast !== null && inLast === outLast && target[target.length - 1] === -1) return u.input(0);
    u.freeze(u.input(0), `reshape ${u.nodeId} changes the feature axis (${formatShape(inShape)} -> ${formatShape(outShape)})`);
    return u.fixed(outLast, `reshape ${u.nodeId} produces a feature axis of fixed size ${outLast}`);
  },
};
