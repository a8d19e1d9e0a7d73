import { sizeOf } from '@rs/core/extend';
import { getKernel, replaceKernel } from './registry';
import { SIMD_PLAIN_BASE64, SIMD_SHARED_BASE64 } from './simd-binary';
import type { HeapBackend, KernelArgs, KernelConfig, KernelFunc, TensorInfo } from './types';

/**
 * The package's own WASM-SIMD kernels (native/simd-kernels.c, built into ./simd-binary.ts) for
 * the calls where tfjs-backend-wasm 4.22 has no fast path:
 * - `BatchMatMul` with a batch dimension (attention's scores and values): the stock kernel
 *   runs a scalar loop (about 1.5 GFLOP/s here); XNNPACK's fast path takes one matrix only.
 * - `Sum` over leading axes (every bias gradient): the stock kernel transposes first.
 * - `Tanh`: scalar libm in the stock kernel.
 * - `Add` of a tensor and one broadcast over its leading axes (every bias in a training step,
 *   which adds bias and matmul separately; attention's mask): 0.19 ms for [1024,128] + [128].
 * - `Transpose` of the last two axes (every transposed matmul operand is transposed first, see
 *   ./batch-matmul.ts): the stock kernel moves about 100 million floats a second.
 * The module imports the tfjs module's own memory, so inputs and outputs stay where they are.
 * Every other call (and every call when the module could not be attached) goes to the kernel
 * registered before.
 */

export interface SimdExports {
  rs_gelu(x: number, y: number, n: number): void;
  rs_gelu_grad(dy: number, x: number, dx: number, n: number): void;
  rs_adam(p: number, g: number, m: number, v: number, pOut: number, mOut: number, vOut: number, n: number, lr: number, b1: number, b2: number, omb1: number, omb2: number, c1: number, c2: number, eps: number, decay: number): void;
  rs_layer_norm(x: number, gamma: number, beta: number, y: number, mean: number, rstd: number, rows: number, d: number, eps: number): void;
  rs_layer_norm_grad(dy: number, x: number, gamma: number, mean: number, rstd: number, dx: number, dgamma: number, dbeta: number, rows: number, d: number): void;
  rs_softmax_rows(x: number, probs: number, stats: number, rows: number, c: number): void;
  rs_softmax_ce_grad(dy: number, probs: number, labels: number, out: number, rows: number, c: number): void;
  rs_bmm(a: number, b: number, c: number, scratch: number, batch: number, m: number, n: number, k: number, strideA: number, strideB: number, transA: number, transB: number): void;
  rs_transpose(src: number, dst: number, batch: number, rows: number, cols: number): void;
  rs_add_rows(a: number, b: number, out: number, rows: number, m: number): void;
  rs_sum_leading(x: number, out: number, rows: number, cols: number): void;
  rs_tanh(x: number, y: number, n: number): void;
  rs_conv_grad_filter(x: number, dy: number, dw: number, ...geometry: number[]): void;
  rs_conv_grad_filter_gemm(x: number, dy: number, dw: number, cols: number, part: number, chunk: number, ...geometry: number[]): void;
  rs_conv_grad_input_gemm(dy: number, w: number, dx: number, wt: number, cols: number, chunk: number, ...geometry: number[]): void;
  rs_pool_grad(isMax: number, dy: number, x: number, dx: number, ...geometry: number[]): void;
}

/** The members of tfjs-backend-wasm's backend the kernels use. */
export interface WasmBackend extends HeapBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number; shape: number[] } | undefined };
  wasm: { _malloc(bytes: number): number; _free(pointer: number): void; HEAPU8: Uint8Array; wasmMemory?: unknown; asm?: { memory?: unknown } };
}

const attached = new WeakMap<object, SimdExports>();

/** The SIMD module attached to `backend`, if any. */
export function simdOf(backend: object): SimdExports | undefined {
  return attached.get(backend);
}
/** The kernels of the SIMD module, by the tfjs kernel name they serve. */
export type SimdKernelName =
  | 'BatchMatMul'
  | 'Transpose'
  | 'Add'
  | 'Sum'
  | 'Tanh'
  | 'RsGelu'
  | 'RsGeluGrad'
  | 'RsLayerNorm'
  | 'RsLayerNormGrad'
  | 'RsAdamUpdate'
  | 'RsSoftmaxCrossEntropy'
  | 'RsSoftmaxCrossEntropyGrad'
  | 'Conv2DBackpropFilter'
  | 'Conv2DBackpropInput'
  | 'MaxPoolGrad'
  | 'AvgPoolGrad';
const calls: Record<SimdKernelName, number> = {
  BatchMatMul: 0,
  Transpose: 0,
  Add: 0,
  Sum: 0,
  Tanh: 0,
  RsGelu: 0,
  RsGeluGrad: 0,
  RsLayerNorm: 0,
  RsLayerNormGrad: 0,
  RsAdamUpdate: 0,
  RsSoftmaxCrossEntropy: 0,
  RsSoftmaxCrossEntropyGrad: 0,
  Conv2DBackpropFilter: 0,
  Conv2DBackpropInput: 0,
  MaxPoolGrad: 0,
  AvgPoolGrad: 0,
};

/** Counts one call served by the SIMD module. */
export function countSimdCall(name: SimdKernelName): void {
  calls[name]++;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(text.length));
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/**
 * Instantiates the SIMD module on `backend`'s heap (the shared-memory variant for the threaded
 * build). Returns false, leaving every call on the stock kernels, where the backend exposes no
 * memory or the runtime refuses the module (no SIMD).
 */
export async function attachSimdKernels(backend: unknown): Promise<boolean> {
  const wasm = (backend as Partial<WasmBackend>).wasm;
  const memory = wasm?.wasmMemory ?? wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return false;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  try {
    const module = await WebAssembly.compile(decode(shared ? SIMD_SHARED_BASE64 : SIMD_PLAIN_BASE64));
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    attached.set(backend as object, instance.exports as unknown as SimdExports);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `body` with the SIMD module detached from `backend`: the stock kernels (and, for core's
 * fused kernels, the JavaScript fallbacks) serve every call. For A/B measurements and tests.
 */
export function withoutSimd<T>(backend: object, body: () => T): T {
  const simd = attached.get(backend);
  attached.delete(backend);
  try {
    return body();
  } finally {
    if (simd) attached.set(backend, simd);
  }
}

/** How many calls each SIMD kernel has served in this process (the others went to the stock kernels or, for core's fused kernels, to their JavaScript fallback). */
export function simdKernelCalls(): Readonly<typeof calls> {
  return { ...calls };
}

export const offset = (backend: WasmBackend, t: TensorInfo): number => (backend.dataIdMap.get(t.dataId) as { memoryOffset: number }).memoryOffset;
const sameDims = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * A kernel served by the SIMD module when `run` takes the call (it returns the output), and by
 * the kernel registered before (`original`) when the module is not attached or `run` declines
 * (returns undefined).
 */
export type SimdRun = (simd: SimdExports, backend: WasmBackend, args: KernelArgs) => TensorInfo | undefined;

function simdKernel(name: SimdKernelName, original: KernelConfig, run: SimdRun): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const simd = attached.get(backend);
    const out = simd && run(simd, backend, args);
    if (!out) return original.kernelFunc(args);
    countSimdCall(name);
    return out;
  };
}

const batchMatMul: SimdRun = (simd, backend, args) => {
  const { a, b } = args.inputs;
  const { transposeA = false, transposeB = false } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const batchDimsA = a.shape.slice(0, -2);
  const batchDimsB = b.shape.slice(0, -2);
  const [batchA, batchB] = [sizeOf(batchDimsA), sizeOf(batchDimsB)];
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const [kb, n] = transposeB ? [bc, br] : [br, bc];
  // Batched calls only (one matrix takes XNNPACK's path); one batch broadcast at most.
  const broadcastable = sameDims(batchDimsA, batchDimsB) || batchA === 1 || batchB === 1;
  if (Math.max(batchA, batchB) < 2 || !broadcastable || k !== kb || m * n * k === 0) return undefined;
  const out = backend.makeOutput([...(batchA >= batchB ? batchDimsA : batchDimsB), m, n], 'float32');
  const scratch = transposeB ? backend.wasm._malloc(k * n * 4) : 0;
  try {
    simd.rs_bmm(offset(backend, a), offset(backend, b), offset(backend, out), scratch, Math.max(batchA, batchB), m, n, k, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n, transposeA ? 1 : 0, transposeB ? 1 : 0);
  } finally {
    if (scratch) backend.wasm._free(scratch);
  }
  return out;
};

/** A transpose of the last two axes (every transposed matmul operand goes through it). */
const transposeLast2: SimdRun = (simd, backend, args) => {
  const { x } = args.inputs;
  const perm = ((args.attrs ?? {}) as { perm: number[] }).perm;
  const rank = x.shape.length;
  const last2 = rank >= 2 && perm.length === rank && perm.every((p, i) => (i < rank - 2 ? p === i : p === (i === rank - 2 ? rank - 1 : rank - 2)));
  if ((x.dtype !== 'float32' && x.dtype !== 'int32') || !last2 || sizeOf(x.shape) === 0) return undefined;
  const [rows, cols] = x.shape.slice(-2);
  const out = backend.makeOutput([...x.shape.slice(0, -2), cols, rows], x.dtype);
  simd.rs_transpose(offset(backend, x), offset(backend, out), sizeOf(x.shape.slice(0, -2)), rows, cols);
  return out;
};

/** a + b where one operand's shape is a proper suffix of the other's (broadcast over leading axes). */
const addRows: SimdRun = (simd, backend, args) => {
  let { a, b } = args.inputs;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  if (b.shape.length > a.shape.length) [a, b] = [b, a];
  const m = sizeOf(b.shape);
  const suffix = b.shape.length > 0 && b.shape.length < a.shape.length && sameDims(a.shape.slice(a.shape.length - b.shape.length), b.shape);
  if (!suffix || m === 0) return undefined;
  const out = backend.makeOutput([...a.shape], 'float32');
  simd.rs_add_rows(offset(backend, a), offset(backend, b), offset(backend, out), sizeOf(a.shape) / m, m);
  return out;
};

const sumLeading: SimdRun = (simd, backend, args) => {
  const { x } = args.inputs;
  const { axis, keepDims = false } = (args.attrs ?? {}) as { axis: number | number[]; keepDims?: boolean };
  const rank = x.shape.length;
  const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((d) => (d < 0 ? d + rank : d)))].sort((p, q) => p - q);
  // Leading axes only, and not all of them (an inner or full reduction is the stock kernel's fast case).
  const leading = axes.length > 0 && axes.length < rank && axes.every((d, i) => d === i);
  if (x.dtype !== 'float32' || !leading || sizeOf(x.shape) === 0) return undefined;
  const kept = x.shape.slice(axes.length);
  const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
  simd.rs_sum_leading(offset(backend, x), offset(backend, out), sizeOf(x.shape.slice(0, axes.length)), sizeOf(kept));
  return out;
};

const tanh: SimdRun = (simd, backend, args) => {
  const { x } = args.inputs;
  if (x.dtype !== 'float32') return undefined;
  const out = backend.makeOutput([...x.shape], 'float32');
  simd.rs_tanh(offset(backend, x), offset(backend, out), sizeOf(x.shape));
  return out;
};

/** Wraps each kernel of `runs` registered so far for `backendName` in its SIMD run; returns the names wrapped. */
export function registerSimdRuns(backendName: string, runs: Partial<Record<SimdKernelName, SimdRun>>): string[] {
  const patched: string[] = [];
  for (const [name, run] of Object.entries(runs) as [SimdKernelName, SimdRun][]) {
    const original = getKernel(name, backendName);
    if (!original) continue;
    replaceKernel({ ...original, kernelFunc: simdKernel(name, original, run) });
    patched.push(name);
  }
  return patched;
}

/** Registers the SIMD kernels over the ones registered so far for `backendName`; returns their names. */
export function registerSimdKernels(backendName: string): string[] {
  return registerSimdRuns(backendName, { BatchMatMul: batchMatMul, Transpose: transposeLast2, Add: addRows, Sum: sumLeading, Tanh: tanh });
}
