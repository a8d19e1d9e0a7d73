import type { OnnxRule } from '../rule';

/** `flatten`: `[N, d1, ..., dk] -> [N, d1 * ... * dk]` row-major, on the NHWC tensor (so the order is core's). */
export const flattenRule: OnnxRule<Record<string, never>> = {
  op: 'flatten',
  emit: (ctx) => ctx.op('Flatten', [ctx.inputNames[0]], { axis: 1 }),
};

/** `reshape` of everything after the batch: ONNX Reshape with 0 (copy) for the batch, so any batch size works. */
export const reshapeRule: OnnxRule<{ shape: number[] }> = {
  op: 'reshape',
  emit: (ctx) => ctx.op('Reshape', [ctx.inputNames[0], ctx.int64s([0, ...ctx.node.attrs.shape])]),
};

/** `slice`: a box over the non-batch axes (size -1 = to the end), as ONNX Slice on axes 1..k. */
export const sliceRule: OnnxRule<{ begin: number[]; size: number[] }> = {
  op: 'slice',
  emit(ctx) {
    const { begin } = ctx.node.attrs;
    const dims = ctx.output.shape.slice(1) as number[];
    const ends = begin.map((b, i) => b + dims[i]);
    const axes = begin.map((_, i) => i + 1);
    return ctx.op('Slice', [ctx.inputNames[0], ctx.int64s(begin), ctx.int64s(ends), ctx.int64s(axes)]);
  },
};
