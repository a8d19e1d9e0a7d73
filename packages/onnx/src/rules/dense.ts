import type { OnnxRule } from '../rule';

/**
 * `dense`: `y = x @ kernel + bias` over the last axis. Rank 2 becomes one Gemm; higher ranks a
 * MatMul (which broadcasts over the leading axes) and an Add.
 */
export const denseRule: OnnxRule<{ units: number; useBias?: boolean }> = {
  op: 'dense',
  emit(ctx) {
    const [x] = ctx.inputNames;
    const useBias = ctx.node.attrs.useBias !== false;
    if (ctx.inputs[0].shape.length === 2) {
      return ctx.op('Gemm', useBias ? [x, ctx.param('kernel'), ctx.param('bias')] : [x, ctx.param('kernel')]);
    }
    const y = ctx.op('MatMul', [x, ctx.param('kernel')]);
    return useBias ? ctx.op('Add', [y, ctx.param('bias')]) : y;
  },
};
