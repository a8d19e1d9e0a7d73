import type { OnnxRule } from '../rule';

/**
 * `layerNorm` over the last axis: ONNX LayerNormalization (opset 17), which computes the same
 * `(x - mean) / sqrt(var + epsilon) * gamma + beta` with the biased variance.
 */
export const layerNormRule: OnnxRule<{ epsilon?: number }> = {
  op: 'layerNorm',
  emit(ctx) {
    const epsilon = ctx.node.attrs.epsilon ?? 1e-5;
    return ctx.op('LayerNormalization', [ctx.inputNames[0], ctx.param('gamma'), ctx.param('beta')], { axis: -1, epsilon: { float: epsilon } });
  },
};
