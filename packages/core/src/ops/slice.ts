import { tf } from '../tf';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';
import { knownFeatureDims, show } from './attrs';

export interface SliceAttrs {
  /** Start per non-batch axis. */
  begin: number[];
  /** Length per non-batch axis; -1 = to the end. */
  size: number[];
}

/** Sizes with every -1 resolved against `dims` (the non-batch dims). */
function resolvedSizes(attrs: SliceAttrs, dims: readonly number[]): number[] {
  return attrs.size.map((s, i) => (s === -1 ? dims[i] - attrs.begin[i] : s));
}

/**
 * A box of the input, over every axis but the batch. Units pass through when the feature axis is
 * kept whole (say so with size -1: an explicit full size goes stale when units change
 * upstream); a partial feature axis freezes the input's units.
 *
 * @example
 * { id: 'crop', op: 'slice', inputs: ['c1'], attrs: { begin: [2, 2, 0], size: [24, 24, -1] } }
 */
export const slice: OpSchema<SliceAttrs> = {
  name: 'slice',
  arity: 1,
  infer(attrs, [x], ctx) {
    const rank = x.shape.length - 1;
    const { begin, size } = attrs;
    const intArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isInteger(d));
    if (!intArray(begin) || begin.some((b) => b < 0)) ctx.failAttrs(`begin must be an array of non-negative integers, got ${show(begin)}`);
    if (!intArray(size) || size.some((s) => s < 1 && s !== -1)) ctx.failAttrs(`size must be an array of positive integers or -1, got ${show(size)}`);
    if (begin.length !== rank || size.length !== rank) {
      ctx.failAttrs(`begin and size need one entry per non-batch axis (${rank} for ${formatShape(x.shape)}), got begin ${show(begin)} and size ${show(size)}`);
    }
    if (rank < 1) ctx.fail(`expects an input of rank >= 2, got ${formatShape(x.shape)}`);
    const dims = knownFeatureDims(ctx, x.shape);
    const sizes = resolvedSizes(attrs, dims);
    dims.forEach((d, i) => {
      if (begin[i] + sizes[i] > d || sizes[i] < 1) {
        ctx.fail(`begin ${show(begin)} with size ${show(size)} does not fit inside ${formatShape(x.shape)} (axis ${i + 1})`);
      }
    });
    return { shape: [x.shape[0], ...sizes], dtype: x.dtype };
  },
  forward([x], _params, attrs) {
    return tf.slice(x, [0, ...attrs.begin], [-1, ...attrs.size]);
  },
  units(u) {
    const inShape = u.inputs[0].shape;
    const outShape = u.output.shape;
    const inLast = inShape[inShape.length - 1] as number;
    const outLast = outShape[outShape.length - 1] as number;
    // Units pass only with size -1 on the feature axis: an explicit size would go stale after an edit.
    if (outLast === inLast && u.attrs.size[u.attrs.size.length - 1] === -1) return u.input(0);
    u.freeze(u.input(0), `slice ${u.nodeId} keeps only part of the feature axis (${formatShape(inShape)} -> ${formatShape(outShape)})`);
    return u.fixed(outLast, `slice ${u.nodeId} produces a feature axis of fixed size ${outLast}`);
  },
};
