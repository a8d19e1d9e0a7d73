/**
 * The kernel set of the native backend: every kernel of tfjs-backend-cpu (the native backend
 * stores tensors exactly as the cpu backend does, so cpu's kernels run on it unchanged), with
 * the hot ones replaced by native kernels. NATIVE_KERNELS lists those.
 */
import { attentionKernels } from './attention';
import { convKernels } from './conv';
import { dataKernels } from './data';
import { elementwiseKernels } from './elementwise';
import { lossKernels } from './loss';
import { matmulKernels } from './matmul';
import { normKernels } from './norm';
import { optimizerKernels } from './optimizer';
import { guardViews, registry, type KernelConfig, type KernelFunc } from './common';

export { setNativeState, native } from './common';

function nativeKernels(backendName: string): KernelConfig[] {
  return [...matmulKernels(backendName), ...elementwiseKernels(backendName), ...dataKernels(backendName), ...optimizerKernels(backendName), ...lossKernels(backendName), ...normKernels(backendName), ...convKernels(backendName), ...attentionKernels(backendName)];
}

/** Names of the kernels that run as native code (the others are tfjs-backend-cpu's). */
export const NATIVE_KERNELS: readonly string[] = nativeKernels('native').map((k) => k.kernelName);

/** Registers every cpu kernel for `backendName`, then the native ones over them. Idempotent. */
export function registerKernels(backendName: string): string[] {
  const have = new Set(registry.getKernelsForBackend(backendName).map((k) => k.kernelName));
  for (const k of registry.getKernelsForBackend('cpu')) {
    if (have.has(k.kernelName)) registry.unregisterKernel(k.kernelName, backendName);
    registry.registerKernel({ ...k, backendName, kernelFunc: guardViews(k.kernelFunc as KernelFunc) });
  }
  for (const k of nativeKernels(backendName)) {
    if (registry.getKernel(k.kernelName, backendName)) registry.unregisterKernel(k.kernelName, backendName);
    registry.registerKernel(k);
  }
  return [...NATIVE_KERNELS];
}
