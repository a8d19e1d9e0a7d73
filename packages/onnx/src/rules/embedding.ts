import type { OnnxRule } from '../rule';

/**
 * `embedding`: Gather of int32 ids from the `[vocabSize, dim]` table. Ids outside
 * `[0, vocabSize)` are an error in ONNX Runtime (tfjs returns zeros for them on some backends).
 */
export const embeddingRule: OnnxRule<{ vocabSize: number; dim: number }> = {
  op: 'embedding',
  emit: (ctx) => ctx.op('Gather', [ctx.param('table'), ctx.inputNames[0]], { axis: 0 }),
};

/**
 * `positionEmbedding`: `x + table[:T]` for `x` of shape `[N, T, D]`. T is read from the shape when
 * it is known, from the input at run time otherwise.
 */
export const positionEmbeddingRule: OnnxRule<{ maxLength: number }> = {
  op: 'positionEmbedding',
  emit(ctx) {
    const [x] = ctx.inputNames;
    const t = ctx.inputs[0].shape[1];
    const end = typeof t === 'number' ? ctx.int64s([t]) : ctx.op('Slice', [ctx.op('Shape', [x]), ctx.int64s([1]), ctx.int64s([2])]);
    const rows = ctx.op('Slice', [ctx.param('table'), ctx.int64s([0]), end, ctx.int64s([0])]);
    return ctx.op('Add', [x, rows]);
  },
};
