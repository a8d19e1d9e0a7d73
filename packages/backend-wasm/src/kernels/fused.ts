/**
 * Core's fused kernels on wasm (see @rs/core's GELU_KERNEL, LAYER_NORM_KERNEL,
 * ADAM_UPDATE_KERNEL and SOFTMAX_CE_KERNEL): GELU and layer normalisation and their gradients,
 * one Adam update of a parameter, and softmax cross-entropy with class ids and its gradient, each one pass over memory instead of a chain of
 * tfjs kernels (about 14 per parameter for Adam, 20 for the loss). They run in the package's
 * SIMD module; where it could not be attached, a JavaScript loop over the same heap computes the
 * same formula, so that core may rely on them whenever they are registered.
 */
import { ADAM_UPDATE_KERNEL, GELU_GRAD_KERNEL, GELU_KERNEL, LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, SOFTMAX_CE_GRAD_KERNEL, SOFTMAX_CE_KERNEL } from '@rs/core';
import { replaceKernel } from './registry';
import { sizeOf } from '@rs/core/extend';
import { countSimdCall, offset, simdOf, type SimdExports, type SimdKernelName, type WasmBackend } from './simd';
import type { KernelArgs, TensorInfo } from './types';

const S = Math.sqrt(2 / Math.PI);
const C = 0.044715;

function float32(kernel: string, ...ts: Array<TensorInfo | undefined>): TensorInfo[] {
  if (ts.some((t) => !t || t.dtype !== 'float32')) throw new Error(`[INVALID_ARGUMENT] ${kernel} expects float32 inputs.`);
  return ts as TensorInfo[];
}

/** Runs `simd` on the SIMD module attached to `b` (counting the call), or `js` where none is attached. */
function simdOrJs(b: WasmBackend, name: SimdKernelName, simd: (module: SimdExports) => void, js: () => void): void {
  const module = simdOf(b);
  if (!module) return js();
  simd(module);
  countSimdCall(name);
}

const view = (backend: WasmBackend, t: TensorInfo): Float32Array => backend.typedArrayFromHeap(t) as Float32Array;

function gelu({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmBackend;
  const [x] = float32(GELU_KERNEL, inputs.x);
  const n = sizeOf(x.shape);
  const out = b.makeOutput([...x.shape], 'float32');
  simdOrJs(b, 'RsGelu', (simd) => {
    simd.rs_gelu(offset(b, x), offset(b, out), n);
  }, () => {
    const [xs, ys] = [view(b, x), view(b, out)];
    for (let i = 0; i < n; i++) ys[i] = 0.5 * xs[i] * (1 + Math.tanh(S * (xs[i] + C * xs[i] ** 3)));
  });
  return out;
}

function geluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmBackend;
  const [dy, x] = float32(GELU_GRAD_KERNEL, inputs.dy, inputs.x);
  if (dy.shape.join() !== x.shape.join()) throw new Error(`[INVALID_ARGUMENT] ${GELU_GRAD_KERNEL} expects dy and x of one shape.`);
  const n = sizeOf(x.shape);
  const out = b.makeOutput([...x.shape], 'float32');
  simdOrJs(b, 'RsGeluGrad', (simd) => {
    simd.rs_gelu_grad(offset(b, dy), offset(b, x), offset(b, out), n);
  }, () => {
    const [dys, xs, os] = [view(b, dy), view(b, x), view(b, out)];
    for (let i = 0; i < n; i++) {
      const v = xs[i];
      const t = Math.tanh(S * (v + C * v ** 3));
      os[i] = dys[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * S * (1 + 3 * C * v * v));
    }
  });
  return out;
}

/** The rows and width of a layer norm call, its inputs checked. */
function layerNormShape(kernel: string, x: TensorInfo, gamma: TensorInfo): [number, number] {
  const d = x.shape[x.shape.length - 1];
  if (x.shape.length < 1 || gamma.shape.length !== 1 || gamma.shape[0] !== d) throw new Error(`[INVALID_ARGUMENT] ${kernel} expects gamma of shape [${d}], got [${gamma.shape.join(', ')}].`);
  return [d === 0 ? 0 : sizeOf(x.shape) / d, d];
}

function layerNorm({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmBackend;
  const [x, gamma, beta] = float32(LAYER_NORM_KERNEL, inputs.x, inputs.gamma, inputs.beta);
  const [rows, d] = layerNormShape(LAYER_NORM_KERNEL, x, gamma);
  const epsilon = Number((attrs as { epsilon?: number }).epsilon ?? 1e-5);
  const y = b.makeOutput([...x.shape], 'float32');
  const mean = b.makeOutput([rows], 'float32');
  const rstd = b.makeOutput([rows], 'float32');
  simdOrJs(b, 'RsLayerNorm', (simd) => {
    if (rows * d > 0) simd.rs_layer_norm(offset(b, x), offset(b, gamma), offset(b, beta), offset(b, y), offset(b, mean), offset(b, rstd), rows, d, epsilon);
  }, () => {
    const [xs, gs, bs, ys, ms, rs] = [x, gamma, beta, y, mean, rstd].map((t) => view(b, t));
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += xs[r * d + j];
      const mu = Math.fround(s / d);
      let q = 0;
      for (let j = 0; j < d; j++) q += (xs[r * d + j] - mu) ** 2;
      const inv = 1 / Math.sqrt(q / d + epsilon);
      for (let j = 0; j < d; j++) ys[r * d + j] = (xs[r * d + j] - mu) * inv * gs[j] + bs[j];
      [ms[r], rs[r]] = [mu, inv];
    }
  });
  return [y, mean, rstd];
}

function layerNormGrad({ inputs, backend }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmBackend;
  const [dy, x, gamma, mean, rstd] = float32(LAYER_NORM_GRAD_KERNEL, inputs.dy, inputs.x, inputs.gamma, inputs.mean, inputs.rstd);
  const [rows, d] = layerNormShape(LAYER_NORM_GRAD_KERNEL, x, gamma);
  if (dy.shape.join() !== x.shape.join() || sizeOf(mean.shape) !== rows || sizeOf(rstd.shape) !== rows) throw new Error(`[INVALID_ARGUMENT] ${LAYER_NORM_GRAD_KERNEL} expects dy of x's shape and mean, rstd of ${rows} rows.`);
  const dx = b.makeOutput([...x.shape], 'float32');
  const dgamma = b.makeOutput([d], 'float32');
  const dbeta = b.makeOutput([d], 'float32');
  simdOrJs(b, 'RsLayerNormGrad', (simd) => {
    if (d > 0) simd.rs_layer_norm_grad(offset(b, dy), offset(b, x), offset(b, gamma), offset(b, mean), offset(b, rstd), offset(b, dx), offset(b, dgamma), offset(b, dbeta), rows, d);
  }, () => {
    const [dys, xs, gs, ms, rs, dxs, dgs, dbs] = [dy, x, gamma, mean, rstd, dx, dgamma, dbeta].map((t) => view(b, t));
    dgs.fill(0);
    dbs.fill(0);
    for (let r = 0; r < rows; r++) {
      let [a, c] = [0, 0];
      for (let j = 0; j < d; j++) {
        const xh = (xs[r * d + j] - ms[r]) * rs[r];
        const g = dys[r * d + j] * gs[j];
        a += g;
        c += g * xh;
        dgs[j] += dys[r * d + j] * xh;
        dbs[j] += dys[r * d + j];
      }
      for (let j = 0; j < d; j++) {
        const xh = (xs[r * d + j] - ms[r]) * rs[r];
        dxs[r * d + j] = rs[r] * (dys[r * d + j] * gs[j] - a / d - xh * (c / d));
      }
    }
  });
  return [dx, dgamma, dbeta];
}

function adamUpdate({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmBackend;
  const [p, g, m, v] = float32(ADAM_UPDATE_KERNEL, inputs.p, inputs.g, inputs.m, inputs.v);
  const shape = p.shape.join();
  if (g.shape.join() !== shape || m.shape.join() !== shape || v.shape.join() !== shape) throw new Error(`[INVALID_ARGUMENT] ${ADAM_UPDATE_KERNEL} expects p, g, m, v of one shape.`);
  const a = attrs as Record<'learningRate' | 'beta1' | 'beta2' | 'oneMinusBeta1' | 'oneMinusBeta2' | 'c1' | 'c2' | 'epsilon' | 'decay', number>;
  const n = sizeOf(p.shape);
  const outs = [0, 1, 2].map(() => b.makeOutput([...p.shape], 'float32'));
  simdOrJs(b, 'RsAdamUpdate', (simd) => {
    simd.rs_adam(offset(b, p), offset(b, g), offset(b, m), offset(b, v), ...(outs.map((o) => offset(b, o)) as [number, number, number]), n, a.learningRate, a.beta1, a.beta2, a.oneMinusBeta1, a.oneMinusBeta2, a.c1, a.c2, a.epsilon, a.decay);
  }, () => {
    const [ps, gs, ms, vs, pOut, mOut, vOut] = [p, g, m, v, ...outs].map((t) => view(b, t));
    for (let i = 0; i < n; i++) {
      const mi = Math.fround(ms[i] * a.beta1 + gs[i] * a.oneMinusBeta1);
      const vi = Math.fround(vs[i] * a.beta2 + gs[i] * gs[i] * a.oneMinusBeta2);
      const base = a.decay > 0 ? ps[i] - ps[i] * a.decay : ps[i];
      [mOut[i], vOut[i], pOut[i]] = [mi, vi, base - (mi / a.c1 / (Math.sqrt(vi / a.c2) + a.epsilon)) * a.learningRate];
    }
  });
  return outs;
}

/** The int32 class ids [rows] of a softmax cross-entropy call. */
function classIds(kernel: string, labels: TensorInfo | undefined, rows: number): TensorInfo {
  if (!labels || labels.dtype !== 'int32' || labels.shape.length !== 1 || labels.shape[0] !== rows) {
    throw new Error(`[INVALID_ARGUMENT] ${kernel} expects int32 labels of shape [${rows}], got ${labels ? `${labels.dtype} [${labels.shape.join(', ')}]` : 'none'}.`);
  }
  return labels;
}

function softmaxCrossEntropy({ inputs, backend }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WasmBackend;
  const [logits] = float32(SOFTMAX_CE_KERNEL, inputs.logits);
  if (logits.shape.length !== 2) throw new Error(`[INVALID_ARGUMENT] ${SOFTMAX_CE_KERNEL} expects logits [n, c].`);
  const [rows, c] = logits.shape;
  const labels = classIds(SOFTMAX_CE_KERNEL, inputs.labels, rows);
  const loss = b.makeOutput([], 'float32');
  const probs = b.makeOutput([rows, c], 'float32');
  const stats = new Float64Array(2 * rows);
  simdOrJs(b, 'RsSoftmaxCrossEntropy', (simd) => {
    if (rows * c === 0) return;
    const scratch = b.wasm._malloc(8 * rows);
    try {
      simd.rs_softmax_rows(offset(b, logits), offset(b, probs), scratch, rows, c);
      stats.set(new Float32Array(b.wasm.HEAPU8.buffer, scratch, 2 * rows));
    } finally {
      b.wasm._free(scratch);
    }
  }, () => {
    const [xs, ps] = [view(b, logits), view(b, probs)];
    for (let r = 0; r < rows; r++) {
      let mx = xs[r * c];
      for (let j = 1; j < c; j++) mx = xs[r * c + j] > mx ? xs[r * c + j] : mx;
      let s = 0;
      for (let j = 0; j < c; j++) s += ps[r * c + j] = Math.exp(xs[r * c + j] - mx);
      for (let j = 0; j < c; j++) ps[r * c + j] /= s;
      [stats[2 * r], stats[2 * r + 1]] = [mx, s];
    }
  });
  // The loss in double precision: mean over rows of log(sum) - (x[label] - max); labels out of range add nothing.
  const [xs, ids] = [view(b, logits), b.typedArrayFromHeap(labels) as Int32Array];
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const label = ids[r];
    if (label >= 0 && label < c) total += Math.log(stats[2 * r + 1]) - (xs[r * c + label] - stats[2 * r]);
  }
  view(b, loss)[0] = total / rows;
  return [loss, probs];
}

function softmaxCrossEntropyGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WasmBackend;
  const [dy, probs] = float32(SOFTMAX_CE_GRAD_KERNEL, inputs.dy, inputs.probs);
  if (sizeOf(dy.shape) !== 1 || probs.shape.length !== 2) throw new Error(`[INVALID_ARGUMENT] ${SOFTMAX_CE_GRAD_KERNEL} expects a scalar dy and probs [n, c].`);
  const [rows, c] = probs.shape;
  const labels = classIds(SOFTMAX_CE_GRAD_KERNEL, inputs.labels, rows);
  const out = b.makeOutput([rows, c], 'float32');
  const dyValue = view(b, dy)[0];
  simdOrJs(b, 'RsSoftmaxCrossEntropyGrad', (simd) => {
    if (rows * c === 0) return;
    simd.rs_softmax_ce_grad(dyValue, offset(b, probs), offset(b, labels), offset(b, out), rows, c);
  }, () => {
    const [ps, os, ids] = [view(b, probs), view(b, out), b.typedArrayFromHeap(labels) as Int32Array];
    const scale = dyValue / rows;
    for (let r = 0; r < rows; r++) {
      const inRange = ids[r] >= 0 && ids[r] < c;
      for (let j = 0; j < c; j++) os[r * c + j] = inRange ? ps[r * c + j] * scale : 0;
      if (inRange) os[r * c + ids[r]] -= scale;
    }
  });
  return out;
}

/** Registers core's fused kernels for `backendName`; returns their names. */
export function registerFusedKernels(backendName: string): string[] {
  const kernels = {
    [GELU_KERNEL]: gelu,
    [GELU_GRAD_KERNEL]: geluGrad,
    [LAYER_NORM_KERNEL]: layerNorm,
    [LAYER_NORM_GRAD_KERNEL]: layerNormGrad,
    [ADAM_UPDATE_KERNEL]: adamUpdate,
    [SOFTMAX_CE_KERNEL]: softmaxCrossEntropy,
    [SOFTMAX_CE_GRAD_KERNEL]: softmaxCrossEntropyGrad,
  };
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) replaceKernel({ kernelName, backendName, kernelFunc: kernelFunc as never });
  return Object.keys(kernels);
}
