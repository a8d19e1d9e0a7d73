/**
 * The wasm backend's kernel patches, one per file, and the list `install` registers them from
 * (in order: Conv2DBackpropFilter must be registered before the cpu bridge fills the kernels
 * wasm still lacks, or the slow cpu one would be filled in instead).
 */
import { patchTransposedMatMul, registerDenseKernel } from './batch-matmul';
import { patchConv2D } from './conv2d';
import { registerConv2DBackpropFilter } from './conv2d-backprop-filter';
import { patchFusedBias } from './fused-bias';
import { patchGather } from './gather';
import { patchIdentity } from './identity';
import { registerSegmentSum } from './segment-sum';
import { registerSimdKernels } from './simd';
import { registerFusedKernels } from './fused';

export { WRONG_ON_WASM, fillMissingKernels } from './cpu-bridge';
export { attachSimdKernels, simdKernelCalls } from './simd';
export { registerSimdConvKernels } from './conv-simd';
import { withoutSimd } from './simd';
import { findBackend } from './registry';

/**
 * Runs `body` with the package's SIMD kernels switched off on the wasm backend (stock kernels
 * and JavaScript fallbacks serve every call): to measure what they bring, or to rule them out.
 *
 * @example
 * const stockMs = withoutSimdKernels(() => time(step));
 */
export function withoutSimdKernels<T>(body: () => T): T {
  const backend = findBackend('wasm');
  return backend ? withoutSimd(backend, body) : body();
}

/** One kernel patch: registers its kernels for a backend and returns those to report as patched. */
export interface KernelPatch {
  /** The install option that skips it: none for a correctness fix. */
  skippedBy?: 'stockMatMul' | 'stockKernels';
  register(backendName: string): string[];
}

/** Every kernel patch, in registration order. */
export const KERNEL_PATCHES: readonly KernelPatch[] = [
  { skippedBy: 'stockMatMul', register: patchTransposedMatMul },
  // A correctness fix, never optional: fused kernels reject reshaped rank-1 biases.
  { register: patchFusedBias },
  { skippedBy: 'stockKernels', register: (backendName) => (registerSegmentSum(backendName), []) },
  { skippedBy: 'stockKernels', register: (backendName) => (patchConv2D(backendName), []) },
  { skippedBy: 'stockKernels', register: (backendName) => (registerConv2DBackpropFilter(backendName) ? ['Conv2DBackpropFilter'] : []) },
  { skippedBy: 'stockKernels', register: (backendName) => (patchGather(backendName) ? ['GatherV2'] : []) },
  { skippedBy: 'stockKernels', register: (backendName) => (patchIdentity(backendName) ? ['Identity'] : []) },
  // Over the transposed-matmul rewrite: batched calls go to the SIMD module, the rest fall through to it.
  { skippedBy: 'stockKernels', register: registerSimdKernels },
  // Core's fused GELU, Adam update and softmax cross-entropy (new kernels: core uses them once registered).
  { skippedBy: 'stockKernels', register: registerFusedKernels },
  // Core's dense kernel: whichever _FusedMatMul is registered, on rank-2 operands.
  { register: registerDenseKernel },
];

/** Registers every patch not skipped by `options` for `backendName`; returns the patched kernel names. */
export function registerKernelPatches(backendName: string, options: { stockMatMul?: boolean; stockKernels?: boolean }): string[] {
  const patched: string[] = [];
  for (const patch of KERNEL_PATCHES) {
    if (patch.skippedBy && options[patch.skippedBy]) continue;
    patched.push(...patch.register(backendName));
  }
  return patched;
}
