import type { OnnxRule } from '../rule';

/**
 * `multiHeadAttention` decomposed as core computes it: q/k/v projections, split into heads
 * `[N, H, T, headDim]`, scores `q k^T * (1 / sqrt(headDim))`, the causal mask added as
 * `-1e9` above the diagonal (core adds `(1 - lowerTriangle) * -1e9`), softmax over keys, the
 * weighted values merged back to `[N, T, H * headDim]` and the output projection.
 */
export const multiHeadAttentionRule: OnnxRule<{ numHeads: number; headDim: number; causal?: boolean; useBias?: boolean }> = {
  op: 'multiHeadAttention',
  emit(ctx) {
    const [x] = ctx.inputNames;
    const { headDim } = ctx.node.attrs;
    const width = ctx.params.wq[1];
    const heads = width / headDim;
    const useBias = ctx.node.attrs.useBias !== false;
    const headShape = ctx.int64s([0, 0, heads, headDim]);
    const project = (w: string, b: string): string => {
      let y = ctx.op('MatMul', [x, ctx.param(w)]);
      if (useBias) y = ctx.op('Add', [y, ctx.param(b)]);
      return ctx.op('Transpose', [ctx.op('Reshape', [y, headShape])], { perm: [0, 2, 1, 3] });
    };
    const q = project('wq', 'bq');
    const k = project('wk', 'bk');
    const v = project('wv', 'bv');
    const kT = ctx.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    let scores = ctx.op('Mul', [ctx.op('MatMul', [q, kT]), ctx.scalar(1 / Math.sqrt(headDim))]);
    if (ctx.node.attrs.causal) {
      const t = ctx.inputs[0].shape[1];
      let mask: string;
      if (typeof t === 'number') {
        const values = new Float32Array(t * t);
        for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) values[i * t + j] = -1e9;
        mask = ctx.constant(values, [t, t]);
      } else {
        // T known only at run time: ones [T, T], strictly upper triangle, times -1e9.
        const tt = ctx.op('Slice', [ctx.op('Shape', [x]), ctx.int64s([1]), ctx.int64s([2])]);
        const ones = ctx.op('ConstantOfShape', [ctx.op('Concat', [tt, tt], { axis: 0 })], { value: { tensor: oneFloat() } });
        mask = ctx.op('Mul', [ctx.op('Trilu', [ones, ctx.constant([1], [], 'int64')], { upper: 1 }), ctx.scalar(-1e9)]);
      }
      scores = ctx.op('Add', [scores, mask]);
    }
    const mixed = ctx.op('MatMul', [ctx.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = ctx.op('Reshape', [ctx.op('Transpose', [mixed], { perm: [0, 2, 1, 3] }), ctx.int64s([0, 0, width])]);
    const y = ctx.op('MatMul', [merged, ctx.param('wo')]);
    return useBias ? ctx.op('Add', [y, ctx.param('bo')]) : y;
  },
};

function oneFloat() {
  return { dims: [1], dataType: 1, floatData: [1] };
}
