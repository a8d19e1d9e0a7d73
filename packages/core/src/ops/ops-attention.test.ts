import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf';
import type { Tensor } from '../tf';
import { multiHeadAttention } from './multi-head-attention';
import { ctx, info, expectCode, forwardContext, makeParams, randomParams, paramShapes, recordUnits, close, runForward, iota } from './ops.test-util';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// ---------------------------------------------------------------- attention

/** Plain-JS reference: per-head scaled dot-product attention with optional causal mask. */
function attentionLoop(x: number[][], p: Record<string, number[][] | number[]>, heads: number, headDim: number, causal: boolean): number[] {
  const mm = (a: number[][], w: number[][], b?: number[]) =>
    a.map((row) => w[0].map((_, j) => row.reduce((s, v, k) => s + v * w[k][j], b ? b[j] : 0)));
  const q = mm(x, p.wq as number[][], p.bq as number[]);
  const k = mm(x, p.wk as number[][], p.bk as number[]);
  const v = mm(x, p.wv as number[][], p.bv as number[]);
  const t = x.length;
  const merged = x.map(() => Array(heads * headDim).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < t; i++) {
      const logits: number[] = [];
      for (let j = 0; j < t; j++) {
        let s = 0;
        for (let e = 0; e < headDim; e++) s += q[i][h * headDim + e] * k[j][h * headDim + e];
        logits.push(causal && j > i ? -Infinity : s / Math.sqrt(headDim));
      }
      const m = Math.max(...logits);
      const ex = logits.map((l) => Math.exp(l - m));
      const z = ex.reduce((a, b) => a + b, 0);
      for (let j = 0; j < t; j++) for (let e = 0; e < headDim; e++) merged[i][h * headDim + e] += (ex[j] / z) * v[j][h * headDim + e];
    }
  }
  return mm(merged, p.wo as number[][], p.bo as number[]).flat();
}

describe('multiHeadAttention', () => {
  const attrs = { numHeads: 2, headDim: 3, causal: true };
  const xInfo = info([null, 4, 5]);

  it('infers shapes and rejects bad attrs and shapes', () => {
    expect(multiHeadAttention.infer(attrs, [xInfo], ctx)).toEqual(xInfo);
    expectCode(() => multiHeadAttention.infer({ numHeads: 0, headDim: 3 }, [xInfo], ctx), 'INVALID_ATTRS', /numHeads/);
    expectCode(() => multiHeadAttention.infer({ numHeads: 2, headDim: 3, causal: 'yes' as never }, [xInfo], ctx), 'INVALID_ATTRS', /causal/);
    expectCode(() => multiHeadAttention.infer(attrs, [info([null, 5])], ctx), 'SHAPE_MISMATCH', /\[\?, 5\]/);
  });

  it('declares projection params', () => {
    expect(paramShapes(multiHeadAttention, attrs, [xInfo])).toEqual({
      wq: [5, 6], wk: [5, 6], wv: [5, 6], wo: [6, 5], bq: [6], bk: [6], bv: [6], bo: [5],
    });
    expect(Object.keys(paramShapes(multiHeadAttention, { ...attrs, useBias: false }, [xInfo])).sort()).toEqual(['wk', 'wo', 'wq', 'wv']);
  });

  for (const causal of [false, true]) {
    it(`matches a direct loop (causal ${causal})`, () => {
      const a = { ...attrs, causal };
      const params = randomParams(multiHeadAttention.params!(a, [xInfo]), 3);
      const x = iota([2, 4, 5], 0.05);
      const y = runForward(multiHeadAttention, [x], params, a);
      expect(y.shape).toEqual([2, 4, 5]);
      const plain = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.arraySync() as number[][]]));
      const expected = (x.arraySync() as number[][][]).flatMap((sample) => attentionLoop(sample, plain, 2, 3, causal));
      close(y, expected, 1e-4);
    });
  }

  it('with a causal mask, earlier outputs ignore later tokens', () => {
    const params = randomParams(multiHeadAttention.params!(attrs, [xInfo]), 4);
    const x = iota([1, 4, 5]);
    const changed = tf.concat([tf.slice(x, [0, 0, 0], [1, 2, 5]), tf.mul(tf.slice(x, [0, 2, 0], [1, 2, 5]), -3)], 1);
    const run = (causal: boolean, input: Tensor) => Array.from(runForward(multiHeadAttention, [input], params, { ...attrs, causal }).dataSync());
    const [before, after] = [run(true, x), run(true, changed)];
    close(after.slice(0, 10), before.slice(0, 10), 1e-5); // tokens 0 and 1 unchanged
    expect(Math.abs(after[15] - before[15])).toBeGreaterThan(1e-4); // token 3 sees the change
    const [open, openChanged] = [run(false, x), run(false, changed)];
    expect(Math.abs(openChanged[0] - open[0])).toBeGreaterThan(1e-4); // without the mask token 0 sees it
  });

  it('removing a head after syncAttrs equals zeroing its output rows', () => {
    const a = { numHeads: 3, headDim: 2 };
    const info3 = info([null, 3, 4]);
    const params = randomParams(multiHeadAttention.params!(a, [info3]), 5);
    const x = iota([2, 3, 4]);
    // Head 1 occupies columns 2..3 of wq/wk/wv/bq/bk/bv and rows 2..3 of wo.
    const keep = tf.tensor1d([0, 1, 4, 5], 'int32');
    const pruned: Record<string, Tensor> = { ...params };
    for (const name of ['wq', 'wk', 'wv']) pruned[name] = tf.gather(params[name], keep, 1);
    for (const name of ['bq', 'bk', 'bv']) pruned[name] = tf.gather(params[name], keep);
    pruned.wo = tf.gather(params.wo, keep);
    const prunedShapes = Object.fromEntries(Object.entries(pruned).map(([k, v]) => [k, v.shape]));
    const synced = multiHeadAttention.syncAttrs!(a, prunedShapes, [info3]);
    expect(synced.numHeads).toBe(2);
    const rowMask = tf.tensor2d([1, 1, 0, 0, 1, 1], [6, 1]);
    const zeroed = { ...params, wo: tf.mul(params.wo, rowMask) };
    close(runForward(multiHeadAttention, [x], pruned, synced), Array.from(runForward(multiHeadAttention, [x], zeroed, a).dataSync()), 1e-5);
  });

  it('declares heads as a unit group and the output features as another', () => {
    const { calls } = recordUnits(multiHeadAttention, attrs, [xInfo]);
    expect(calls.slice(0, 3)).toEqual(['wq', 'wk', 'wv'].map((p) => ({ kind: 'consume', args: [0, p, 0] })));
    expect(calls[3]).toEqual({
      kind: 'source',
      args: [
        'heads',
        2,
        [
          { param: 'wq', axis: 1, inner: 3 },
          { param: 'wk', axis: 1, inner: 3 },
          { param: 'wv', axis: 1, inner: 3 },
          { param: 'bq', axis: 0, inner: 3 },
          { param: 'bk', axis: 0, inner: 3 },
          { param: 'bv', axis: 0, inner: 3 },
          { param: 'wo', axis: 0, inner: 3, role: 'in' },
        ],
      ],
    });
    expect(calls[4]).toEqual({ kind: 'source', args: ['out', 5, [{ param: 'wo', axis: 1 }, { param: 'bo', axis: 0 }]] });
  });

  it('counts flops', () => {
    // T=4, D=5, H*hd=6: projections 3*4*(2*5*6+6), scores and weighted sum 2 * 2*4*4*2*3, output 4*(2*6*5+5).
    expect(multiHeadAttention.flops!(attrs, [xInfo], xInfo)).toBe(3 * 4 * 66 + 2 * (2 * 16 * 2 * 3) + 4 * 65);
  });

  it('has gradients for every param', () => {
    const params = makeParams(multiHeadAttention.params!(attrs, [xInfo]));
    const names = Object.keys(params);
    const x = iota([1, 4, 5]);
    const grads = tf.grads((...ts: Tensor[]) =>
      tf.sum(multiHeadAttention.forward([x], Object.fromEntries(names.map((n, i) => [n, ts[i]])), attrs, forwardContext(false))),
    )(names.map((n) => params[n]));
    expect(grads.map((g) => g.shape)).toEqual(names.map((n) => params[n].shape));
  });
});
