import type { OnnxRule } from '../rule';

/**
 * `batchNorm` in its inference form (moving statistics), over the last (channel) axis:
 * `(x - movingMean) * (rsqrt(movingVariance + epsilon) * gamma) + beta`, the same operations as
 * core's forward. Written with broadcasting rather than ONNX BatchNormalization, which wants
 * the channels on axis 1.
 */
export const batchNormRule: OnnxRule<{ epsilon?: number }> = {
  op: 'batchNorm',
  emit(ctx) {
    const epsilon = ctx.node.attrs.epsilon ?? 1e-3;
    const std = ctx.op('Sqrt', [ctx.op('Add', [ctx.param('movingVariance'), ctx.scalar(epsilon)])]);
    const scale = ctx.op('Mul', [ctx.op('Reciprocal', [std]), ctx.param('gamma')]);
    const centered = ctx.op('Sub', [ctx.inputNames[0], ctx.param('movingMean')]);
    return ctx.op('Add', [ctx.op('Mul', [centered, scale]), ctx.param('beta')]);
  },
};
