import type { OnnxRule } from '../rule';

/** `learnedScale` (@rs/progressive's lateral adapter scale): `y = alpha * x` with a learned `alpha` of shape [1]. */
export const learnedScaleRule: OnnxRule<{ init?: number }> = {
  op: 'learnedScale',
  emit: (ctx) => ctx.op('Mul', [ctx.inputNames[0], ctx.param('alpha')]),
};
