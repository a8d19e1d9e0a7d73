import type { OnnxRule } from '../rule';

/** One-to-one elementwise ops. */
function unary(op: string, onnxOp: string): OnnxRule<Record<string, never>> {
  return { op, emit: (ctx) => ctx.op(onnxOp, [ctx.inputNames[0]]) };
}

export const reluRule = unary('relu', 'Relu');
export const sigmoidRule = unary('sigmoid', 'Sigmoid');
export const tanhRule = unary('tanh', 'Tanh');

/** `dropout` is the identity at inference (inverted dropout scales while training only). */
export const dropoutRule = unary('dropout', 'Identity');

/**
 * `gelu`: core's gelu is the tanh approximation `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`,
 * not the erf form, so it is written out with the same operations in the same order (opset 17
 * has no Gelu; opset 20's `Gelu(approximate='tanh')` would be the same function).
 */
export const geluRule: OnnxRule<Record<string, never>> = {
  op: 'gelu',
  emit(ctx) {
    const [x] = ctx.inputNames;
    const cube = ctx.op('Mul', [ctx.op('Mul', [x, x]), x]);
    const inner = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [cube, ctx.scalar(0.044715)])]), ctx.scalar(Math.sqrt(2 / Math.PI))]);
    return ctx.op('Mul', [ctx.op('Mul', [x, ctx.scalar(0.5)]), ctx.op('Add', [ctx.op('Tanh', [inner]), ctx.scalar(1)])]);
  },
};

/** `softmax` along `axis` (default -1). Since opset 13 ONNX Softmax normalises along one axis, like core. */
export const softmaxRule: OnnxRule<{ axis?: number }> = {
  op: 'softmax',
  emit(ctx) {
    const rank = ctx.inputs[0].shape.length;
    const axis = ctx.node.attrs.axis ?? -1;
    return ctx.op('Softmax', [ctx.inputNames[0]], { axis: axis < 0 ? axis + rank : axis });
  },
};
