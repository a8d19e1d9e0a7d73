import type { OnnxRule } from '../rule';
import { DataType } from '../proto';

/**
 * `nas.mixed` (@rs/nas, DARTS' mixed operation): `sum_k softmax(alpha)_k * input_k`. At inference
 * this is a static graph (candidate dropout acts only in training), so the export is exact: the
 * softmax of the architecture weights is computed in the graph, like core does.
 */
export const nasMixedRule: OnnxRule<{ candidates: string[] }> = {
  op: 'nas.mixed',
  emit(ctx) {
    const weights = ctx.op('Softmax', [ctx.param('alpha')], { axis: 0 });
    const parts = ctx.inputNames.map((x, k) => ctx.op('Mul', [x, ctx.op('Slice', [weights, ctx.int64s([k]), ctx.int64s([k + 1]), ctx.int64s([0])])]));
    if (parts.length === 1) return parts[0];
    return parts.length === 2 ? ctx.op('Add', parts) : ctx.op('Sum', parts);
  },
};

/** `nas.zero` (@rs/nas, the `none` edge): zeros shaped like the input, with its dtype. */
export const nasZeroRule: OnnxRule<Record<string, never>> = {
  op: 'nas.zero',
  emit(ctx) {
    const dtype = ctx.inputs[0].dtype === 'int32' ? DataType.INT32 : DataType.FLOAT;
    const zero = dtype === DataType.INT32 ? { dims: [1], dataType: dtype, int32Data: [0] } : { dims: [1], dataType: dtype, floatData: [0] };
    return ctx.op('ConstantOfShape', [ctx.op('Shape', [ctx.inputNames[0]])], { value: { tensor: zero } });
  },
};
