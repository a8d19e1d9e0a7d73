/**
 * What every native kernel shares: the bound library, access to the tensors' storage (the cpu
 * backend's typed arrays, which native code reads and writes in place through koffi, with no
 * copy), and the fallback to the cpu kernel of the same name for the cases a native kernel does
 * not cover (other dtypes, broadcasts it has no addressing mode for).
 */
import { tf } from '@rs/core';
import type { KernelRegistration, KernelTensorInfo } from '@rs/core/extend';
import type { NativeLib } from '../library';
import { DEFAULT_POOL_BYTES, StoragePool } from '../pool';

export type TensorInfo = KernelTensorInfo;
export type KernelArgs = { inputs: Record<string, TensorInfo | undefined>; backend: StorageBackend; attrs?: Record<string, unknown> };
export type KernelFunc = (args: KernelArgs) => TensorInfo | TensorInfo[];
export type KernelConfig = KernelRegistration<KernelArgs>;

/** The members of tfjs-backend-cpu's MathBackendCPU the native kernels use. */
export interface StorageBackend {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: string, values?: Float32Array): TensorInfo;
}

/** tfjs-core's kernel registry, structurally typed (its own types name its KernelBackend class). */
export const registry = tf as unknown as {
  getKernel(name: string, backend: string): KernelConfig | undefined;
  getKernelsForBackend(backend: string): KernelConfig[];
  registerKernel(config: KernelConfig): void;
  unregisterKernel(name: string, backend: string): void;
};

export interface NativeState {
  lib: NativeLib;
  /** 1 when GEMM goes to the system BLAS, 0 for the own GEMM. */
  useBlas: number;
}

let state: NativeState | undefined;

/** Storage reused between kernel outputs (see pool.ts); sized by install's `poolBytes`. */
export const pool = new StoragePool(DEFAULT_POOL_BYTES);

/** A float32 output array of `n` elements for a native kernel, which writes every element (or pass `zero`). */
export function output(n: number, zero = false): Float32Array {
  return pool.take(n, zero);
}

export function setNativeState(next: NativeState | undefined): void {
  state = next;
}

export function native(): NativeState {
  if (!state) throw new Error('[NO_BACKEND] @rs/backend-native is not installed.');
  return state;
}

/** The float32 storage of `t` (the array native code reads or writes). */
export function f32(backend: StorageBackend, t: TensorInfo): Float32Array {
  return backend.data.get(t.dataId).values as Float32Array;
}

export function allFloat32(backend: StorageBackend, ...ts: (TensorInfo | undefined)[]): boolean {
  return ts.every((t) => t !== undefined && t.dtype === 'float32' && backend.data.get(t.dataId).values instanceof Float32Array);
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The cpu kernel `name`, called when a native kernel does not cover a case. */
export function cpuKernel(name: string): KernelFunc {
  const config = registry.getKernel(name, 'cpu');
  if (!config) throw new Error(`[NO_BACKEND] the cpu kernel '${name}' is not registered; import @tensorflow/tfjs-backend-cpu.`);
  return config.kernelFunc;
}

/**
 * A cpu kernel as the native backend runs it: when an output's storage is a view of an input's
 * buffer under a new tensor (a contiguous Slice returns a subarray), that buffer is shared and
 * the storage pool must never reuse it. Outputs that are an input tensor itself (Reshape,
 * Identity: the same data, counted by reference) are not views.
 */
export function guardViews(kernelFunc: KernelFunc): KernelFunc {
  return (args: KernelArgs) => {
    const result = kernelFunc(args);
    const outputs: TensorInfo[] = Array.isArray(result) ? result : [result];
    for (const out of outputs) {
      const values = args.backend.data.get(out.dataId)?.values;
      // Only a buffer the pool may reuse needs the check (most cpu outputs are fresh arrays).
      if (!ArrayBuffer.isView(values) || !pool.owns(values.buffer)) continue;
      for (const input of Object.values(args.inputs)) {
        if (!input || input.dataId === out.dataId) continue;
        const inputValues = args.backend.data.get(input.dataId)?.values;
        if (ArrayBuffer.isView(inputValues) && inputValues.buffer === values.buffer) pool.disown(values);
      }
    }
    return result;
  };
}

/** A native kernel that falls back to cpu's `name` whenever `run` returns undefined. */
export function withFallback(name: string, run: (args: KernelArgs) => TensorInfo | undefined): KernelFunc {
  let fallback: KernelFunc | undefined;
  return (args) => {
    const out = run(args);
    if (out !== undefined) return out;
    fallback ??= guardViews(cpuKernel(name));
    return fallback(args);
  };
}
