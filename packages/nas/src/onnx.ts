import type { OnnxRule } from '@rs/core/extend';
import type { MixedAttrs } from './ops';

/** ONNX element type codes used here. */
const FLOAT = 1;
const INT32 = 6;

/**
 * The ONNX lowering of `nas.mixed` (DARTS' mixed operation): `sum_k softmax(alpha)_k * input_k`.
 * At inference this is a static graph (candidate dropout acts only in training), so the export
 * is exact: the softmax of the architecture weights is computed in the graph, like the op does.
 */
export const nasMixedOnnx: OnnxRule<MixedAttrs> = {
  op: 'nas.mixed',
  emit(ctx) {
    const weights = ctx.op('Softmax', [ctx.param('alpha')], { axis: 0 });
    const parts = ctx.inputNames.map((x, k) => ctx.op('Mul', [x, ctx.op('Slice', [weights, ctx.int64s([k]), ctx.int64s([k + 1]), ctx.int64s([0])])]));
    if (parts.length === 1) return parts[0];
    return parts.length === 2 ? ctx.op('Add', parts) : ctx.op('Sum', parts);
  },
};

/** The ONNX lowering of `nas.zero` (the `none` edge): zeros shaped like the input, with its dtype. */
export const nasZeroOnnx: OnnxRule<Record<string, never>> = {
  op: 'nas.zero',
  emit(ctx) {
    const zero = ctx.inputs[0].dtype === 'int32' ? { dims: [1], dataType: INT32, int32Data: [0] } : { dims: [1], dataType: FLOAT, floatData: [0] };
    return ctx.op('ConstantOfShape', [ctx.op('Shape', [ctx.inputNames[0]])], { value: { tensor: zero } });
  },
};
