/**
 * Element-wise kernels (binary with the broadcasts that training uses, unary, Step, Select),
 * Softmax over the last axis and Sum and Mean over leading or trailing axes, in native code on OpenMP
 * threads for large tensors. Other dtypes and broadcasts fall back to the cpu kernel.
 */
import { tf, GELU_KERNEL, GELU_GRAD_KERNEL } from '@rs/core';
import { allFloat32, f32, native, output, sizeOf, withFallback, type KernelArgs, type KernelConfig, type TensorInfo } from './common';

/** Op codes of rs_binary (native/rsnative.c). */
const BINARY: Record<string, number> = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6, Pow: 7 };
/** Op codes of rs_unary. */
const UNARY: Record<string, number> = { Relu: 0, Sqrt: 1, Square: 2, Exp: 3, Log: 4, Neg: 5, Tanh: 6, Sigmoid: 7, Abs: 8, Rsqrt: 9, Relu6: 10, Reciprocal: 11 };

/** How native code addresses an operand of shape `s` in an output of shape `o` (see rs_binary). */
export function addressing(s: readonly number[], o: readonly number[]): { mode: number; size: number; rep: number } | undefined {
  const size = sizeOf(s);
  const total = sizeOf(o);
  if (size === total) return { mode: 0, size, rep: 1 };
  if (size === 1) return { mode: 1, size, rep: 1 };
  const p = [...Array<number>(o.length - s.length).fill(1), ...s];
  const first = p.findIndex((d) => d !== 1);
  if (p.slice(first).every((d, i) => d === o[first + i])) return { mode: 2, size, rep: 1 };
  let last = p.length - 1;
  while (p[last] === 1) last -= 1;
  if (p.slice(0, last + 1).every((d, i) => d === o[i])) return { mode: 3, size, rep: sizeOf(o.slice(last + 1)) };
  return undefined;
}

function binary(op: number) {
  return ({ inputs, backend }: KernelArgs): TensorInfo | undefined => {
    const { a, b } = inputs;
    if (!a || !b || !allFloat32(backend, a, b)) return undefined;
    let shape: number[];
    try {
      shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    } catch {
      return undefined;
    }
    const ma = addressing(a.shape, shape);
    const mb = addressing(b.shape, shape);
    if (!ma || !mb) return undefined;
    const n = sizeOf(shape);
    const out = output(n);
    if (n > 0) native().lib.binary(op, f32(backend, a), ma.mode, ma.size, ma.rep, f32(backend, b), mb.mode, mb.size, mb.rep, out, n);
    return backend.makeTensorInfo(shape, 'float32', out);
  };
}

function unary(op: number) {
  return ({ inputs, backend }: KernelArgs): TensorInfo | undefined => {
    const { x } = inputs;
    if (!x || !allFloat32(backend, x)) return undefined;
    const n = sizeOf(x.shape);
    const out = output(n);
    if (n > 0) native().lib.unary(op, f32(backend, x), out, n);
    return backend.makeTensorInfo([...x.shape], 'float32', out);
  };
}

function step({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { x } = inputs;
  if (!x || !allFloat32(backend, x)) return undefined;
  const n = sizeOf(x.shape);
  const out = output(n);
  if (n > 0) native().lib.step(f32(backend, x), out, n, Number(attrs?.alpha ?? 0));
  return backend.makeTensorInfo([...x.shape], 'float32', out);
}

function gelu({ inputs, backend }: KernelArgs): TensorInfo {
  const { x } = inputs;
  if (!x || !allFloat32(backend, x)) throw new Error(`[INVALID_ARGUMENT] ${GELU_KERNEL} expects a float32 x.`);
  const out = output(sizeOf(x.shape));
  if (out.length > 0) native().lib.gelu(f32(backend, x), out, out.length);
  return backend.makeTensorInfo([...x.shape], 'float32', out);
}

function geluGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, x } = inputs;
  if (!dy || !x || !allFloat32(backend, dy, x) || dy.shape.join() !== x.shape.join()) throw new Error(`[INVALID_ARGUMENT] ${GELU_GRAD_KERNEL} expects float32 dy and x of one shape.`);
  const out = output(sizeOf(x.shape));
  if (out.length > 0) native().lib.geluGrad(f32(backend, dy), f32(backend, x), out, out.length);
  return backend.makeTensorInfo([...x.shape], 'float32', out);
}

function select({ inputs, backend }: KernelArgs): TensorInfo | undefined {
  const { condition, t, e } = inputs;
  if (!condition || !t || !e || !allFloat32(backend, t, e) || condition.dtype !== 'bool') return undefined;
  const cond = backend.data.get(condition.dataId).values;
  if (!(cond instanceof Uint8Array) || condition.shape.join() !== t.shape.join() || t.shape.join() !== e.shape.join()) return undefined;
  const out = output(cond.length);
  if (out.length > 0) native().lib.select(cond, f32(backend, t), f32(backend, e), out, out.length);
  return backend.makeTensorInfo([...t.shape], 'float32', out);
}

function softmax({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { logits } = inputs;
  if (!logits || !allFloat32(backend, logits) || logits.shape.length === 0) return undefined;
  const rank = logits.shape.length;
  const dim = Number(attrs?.dim ?? -1);
  if (dim !== -1 && dim !== rank - 1) return undefined;
  const n = logits.shape[rank - 1];
  const total = sizeOf(logits.shape);
  const out = output(total);
  if (total > 0) native().lib.softmax(f32(backend, logits), out, total / n, n);
  return backend.makeTensorInfo([...logits.shape], 'float32', out);
}

/** Sum (scale 1) or Mean (scale 1/count) over leading or trailing contiguous axes. */
function reduce(mean: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined => {
    const { x } = inputs;
    if (!x || !allFloat32(backend, x)) return undefined;
    const rank = x.shape.length;
    let axes: number[];
    try {
      axes = [...new Set(tf.util.parseAxisParam(attrs?.axis as number | number[], x.shape))].sort((p, q) => p - q);
    } catch {
      return undefined; // the cpu kernel reports it
    }
    if (axes.length === 0) return undefined;
    if (axes[axes.length - 1] - axes[0] !== axes.length - 1) return undefined; // not contiguous
    let axisInner: number;
    if (axes[axes.length - 1] === rank - 1) axisInner = 1;
    else if (axes[0] === 0) axisInner = 0;
    else return undefined;
    const split = axisInner ? axes[0] : axes.length;
    const outer = sizeOf(x.shape.slice(0, split));
    const inner = sizeOf(x.shape.slice(split));
    const keep = Boolean(attrs?.keepDims);
    const shape = x.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    const out = output(axisInner ? outer : inner);
    if (out.length > 0) native().lib.sum(f32(backend, x), out, outer, inner, axisInner);
    if (mean) {
      const count = axisInner ? inner : outer;
      for (let i = 0; i < out.length; i++) out[i] /= count;
    }
    return backend.makeTensorInfo(shape, 'float32', out);
  };
}

export function elementwiseKernels(backendName: string): KernelConfig[] {
  const kernels: KernelConfig[] = [];
  for (const [name, op] of Object.entries(BINARY)) kernels.push({ kernelName: name, backendName, kernelFunc: withFallback(name, binary(op)) });
  for (const [name, op] of Object.entries(UNARY)) kernels.push({ kernelName: name, backendName, kernelFunc: withFallback(name, unary(op)) });
  kernels.push({ kernelName: 'Step', backendName, kernelFunc: withFallback('Step', step) });
  kernels.push({ kernelName: GELU_KERNEL, backendName, kernelFunc: gelu }, { kernelName: GELU_GRAD_KERNEL, backendName, kernelFunc: geluGrad });
  kernels.push({ kernelName: 'Select', backendName, kernelFunc: withFallback('Select', select) });
  kernels.push({ kernelName: 'Softmax', backendName, kernelFunc: withFallback('Softmax', softmax) });
  kernels.push({ kernelName: 'Sum', backendName, kernelFunc: withFallback('Sum', reduce(false)) });
  kernels.push({ kernelName: 'Mean', backendName, kernelFunc: withFallback('Mean', reduce(true)) });
  return kernels;
}
