import type { OnnxRule } from '../rule';

/** `add` of two or more same-shaped tensors: Add, or Sum for more than two. */
export const addRule: OnnxRule<Record<string, never>> = {
  op: 'add',
  emit: (ctx) => (ctx.inputNames.length === 2 ? ctx.op('Add', ctx.inputNames) : ctx.op('Sum', ctx.inputNames)),
};

/** `concat` along `axis` (default -1). */
export const concatRule: OnnxRule<{ axis?: number }> = {
  op: 'concat',
  emit(ctx) {
    const rank = ctx.inputs[0].shape.length;
    const axis = ctx.node.attrs.axis ?? -1;
    return ctx.op('Concat', ctx.inputNames, { axis: axis < 0 ? axis + rank : axis });
  },
};
