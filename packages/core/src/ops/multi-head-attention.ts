import { tf } from '../tf';
import { formatShape } from '../errors';
import type { ParamSpec } from '../ir/types';
import type { ParamAxis } from '../units/builder';
import type { OpSchema } from './schema';
import { checkFloat, checkOptionalBoolean, checkPositiveInt } from './attrs';
import { backendHasKernel } from '../backend';

/**
 * Kernels a backend may register to run the attention itself (scores, mask, softmax, mixing)
 * in one kernel each way, float32, on the projected rows with the heads side by side (so no
 * head-split or merge transposes):
 * `RsAttention` (inputs `q`, `k`, `v`, each [N, T, H * headDim]; attrs `heads`, `causal`,
 * `scale`) returns `out` ([N, T, H * headDim], head h in columns h * headDim ..) and `probs`
 * ([N, H, T, T], each row the softmax of `scale * q k^T` over the positions it may see: every
 * one, or with `causal` itself and the earlier ones, the others exactly 0);
 * `RsAttentionGrad` (inputs `dy` (out's shape), `q`, `k`, `v`, `probs`; attrs `heads`, `scale`)
 * returns `dq`, `dk`, `dv`. Without both, attention is the tfjs ops below and its gradient
 * comes from autodiff. @rs/backend-native registers them.
 */
export const ATTENTION_KERNEL = 'RsAttention';
export const ATTENTION_GRAD_KERNEL = 'RsAttentionGrad';

function fusedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, causal: boolean, scale: number): tf.Tensor {
  const f = tf.customGrad(((qs: tf.Tensor, ks: tf.Tensor, vs: tf.Tensor, save: tf.GradSaveFunc) => {
    const [out, probs] = tf.engine().runKernel(ATTENTION_KERNEL, { q: qs, k: ks, v: vs }, { heads, causal, scale } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([qs, ks, vs, probs]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, [sq, sk, sv, sp]: tf.Tensor[]) =>
        tf.engine().runKernel(ATTENTION_GRAD_KERNEL, { dy, q: sq, k: sk, v: sv, probs: sp }, { heads, scale } as unknown as tf.NamedAttrMap) as tf.Tensor[],
    };
  }) as never) as unknown as (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor;
  return f(q, k, v);
}

export interface MultiHeadAttentionAttrs {
  numHeads: number;
  headDim: number;
  /** Each position attends only to itself and earlier positions. Default false. */
  causal?: boolean;
  /** Biases on the q/k/v and output projections. Default true. */
  useBias?: boolean;
}

/**
 * Multi-head scaled dot-product self-attention over `[N, T, D]`, output `[N, T, D]`. Head `h`
 * owns columns `h * headDim .. (h + 1) * headDim - 1` of `wq`/`wk`/`wv` and the same rows of `wo`.
 * Units: the heads (a group born here) and the `D` output features.
 *
 * @example
 * { id: 'attn1', op: 'multiHeadAttention', inputs: ['ln1'], attrs: { numHeads: 4, headDim: 16, causal: true } }
 */
export const multiHeadAttention: OpSchema<MultiHeadAttentionAttrs> = {
  name: 'multiHeadAttention',
  arity: 1,
  infer(attrs, [x], ctx) {
    checkPositiveInt(ctx, 'numHeads', attrs.numHeads);
    checkPositiveInt(ctx, 'headDim', attrs.headDim);
    checkOptionalBoolean(ctx, 'causal', attrs.causal);
    checkOptionalBoolean(ctx, 'useBias', attrs.useBias);
    checkFloat(ctx, x);
    if (x.shape.length !== 3 || x.shape[2] === null) ctx.fail(`expects an input [batch, time, features] with known features, got ${formatShape(x.shape)}`);
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const d = x.shape[2] as number;
    const width = attrs.numHeads * attrs.headDim;
    const projection: ParamSpec = { shape: [d, width], init: { kind: 'glorotUniform', fanIn: d, fanOut: width } };
    const specs: Record<string, ParamSpec> = {
      wq: projection,
      wk: { ...projection },
      wv: { ...projection },
      wo: { shape: [width, d], init: { kind: 'glorotUniform', fanIn: width, fanOut: d } },
    };
    if (attrs.useBias !== false) {
      for (const name of ['bq', 'bk', 'bv']) specs[name] = { shape: [width], init: { kind: 'zeros' }, role: 'bias' };
      specs.bo = { shape: [d], init: { kind: 'zeros' }, role: 'bias' };
    }
    return specs;
  },
  forward([x], p, attrs) {
    const [n, t, d] = x.shape;
    const headDim = attrs.headDim;
    const width = p.wq.shape[1] as number;
    const heads = width / headDim;
    const useBias = attrs.useBias !== false;
    const rows = tf.reshape(x, [n * t, d]) as tf.Tensor2D;
    const output = (merged: tf.Tensor2D) => {
      let y: tf.Tensor = tf.matMul(merged, p.wo as tf.Tensor2D);
      if (useBias) y = tf.add(y, p.bo);
      return tf.reshape(y, [n, t, d]);
    };
    // [N*T, D] -> [N*T, H * headDim]: the projections, heads side by side.
    const project = (w: tf.Tensor, b: tf.Tensor | undefined) => {
      const y: tf.Tensor = tf.matMul(rows, w as tf.Tensor2D);
      return useBias && b ? tf.add(y, b) : y;
    };
    if (x.dtype === 'float32' && backendHasKernel(ATTENTION_KERNEL) && backendHasKernel(ATTENTION_GRAD_KERNEL)) {
      const [q, k, v] = [project(p.wq, p.bq), project(p.wk, p.bk), project(p.wv, p.bv)].map((y) => tf.reshape(y, [n, t, width]));
      const mixed = fusedAttention(q, k, v, heads, attrs.causal === true, 1 / Math.sqrt(headDim));
      return output(tf.reshape(mixed, [n * t, width]) as tf.Tensor2D);
    }
    // -> [N, H, T, headDim]
    const split = (y: tf.Tensor) => tf.transpose(tf.reshape(y, [n, t, heads, headDim]), [0, 2, 1, 3]);
    const q = split(project(p.wq, p.bq));
    const k = split(project(p.wk, p.bk));
    const v = split(project(p.wv, p.bv));
    // Explicit transpose: tfjs-backend-wasm 4.22's matMul is only fast on untransposed inputs.
    let scores = tf.mul(tf.matMul(q, tf.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(headDim)); // [N, H, T, T]
    if (attrs.causal) {
      // -1e9 above the diagonal, 0 on and below it: written from the host in one upload (built
      // from tf ops, bandPart and its arithmetic took eight kernels per call).
      const blocked = new Float32Array(t * t);
      for (let i = 0; i < t; i++) blocked.fill(-1e9, i * t + i + 1, (i + 1) * t);
      scores = tf.add(scores, tf.tensor2d(blocked, [t, t]));
    }
    const mixed = tf.matMul(tf.softmax(scores), v); // [N, H, T, headDim]
    return output(tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [n * t, width]) as tf.Tensor2D);
  },
  units(u) {
    const { numHeads, headDim } = u.attrs;
    const useBias = u.attrs.useBias !== false;
    const x = u.input(0);
    for (const name of ['wq', 'wk', 'wv']) u.consume(x, name, 0);
    const headAxes: ParamAxis[] = ['wq', 'wk', 'wv'].map((param) => ({ param, axis: 1, inner: headDim }));
    if (useBias) for (const param of ['bq', 'bk', 'bv']) headAxes.push({ param, axis: 0, inner: headDim });
    headAxes.push({ param: 'wo', axis: 0, inner: headDim, role: 'in' });
    // The heads never reach the output's feature axis, so their layout is not returned.
    u.source('heads', numHeads, headAxes);
    const outAxes: ParamAxis[] = [{ param: 'wo', axis: 1 }];
    if (useBias) outAxes.push({ param: 'bo', axis: 0 });
    return u.source('out', u.inputs[0].shape[2] as number, outAxes);
  },
  // Per sample: q/k/v projections, scores QK^T, weights x V, output projection (+ biases).
  flops(attrs, [x]) {
    const t = x.shape[1] ?? 1;
    const d = x.shape[2] as number;
    const width = attrs.numHeads * attrs.headDim;
    const bias = attrs.useBias !== false;
    const projections = 3 * t * (2 * d * width + (bias ? width : 0));
    const scores = attrs.numHeads * t * t * 2 * attrs.headDim;
    const weighted = attrs.numHeads * t * t * 2 * attrs.headDim;
    const output = t * (2 * width * d + (bias ? d : 0));
    return projections + scores + weighted + output;
  },
  syncAttrs(attrs, shapes) {
    return { ...attrs, numHeads: shapes.wq[1] / attrs.headDim };
  },
};
