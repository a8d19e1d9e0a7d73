import { findBackend as tfFindBackend, getKernel as tfGetKernel, getKernelsForBackend as tfGetKernelsForBackend, registerKernel as tfRegisterKernel, unregisterKernel as tfUnregisterKernel } from '@tensorflow/tfjs-core';
import type { KernelBackendLike, KernelConfig } from './types';

/**
 * tfjs-core's kernel registry (`getKernel`, `registerKernel`...) and `findBackend`, seen through
 * the structural types of ./types. tfjs-core types kernels over its own `KernelBackend` class
 * and `NamedAttrMap`, while the patches call members that only tfjs-backend-wasm's backend has
 * (the wasm heap, its data map) and hand kernels to one another; this is the one cast between
 * the two, so that no kernel file reaches past tfjs-core's public types itself.
 */
// Named imports, not core's `tf` namespace: a namespace passed around as a value keeps all of
// tfjs-core in a bundle, and the inference runtime (./runtime.ts) must tree-shake.
const engineApi = {
  getKernel: tfGetKernel,
  getKernelsForBackend: tfGetKernelsForBackend,
  registerKernel: tfRegisterKernel,
  unregisterKernel: tfUnregisterKernel,
  findBackend: tfFindBackend,
} as unknown as {
  getKernel(name: string, backend: string): KernelConfig | undefined;
  getKernelsForBackend(backend: string): KernelConfig[];
  registerKernel(config: KernelConfig): void;
  unregisterKernel(name: string, backend: string): void;
  findBackend(name: string): KernelBackendLike | undefined;
};

/** The kernel registered under `name` for `backendName`, if any. */
export function getKernel(name: string, backendName: string): KernelConfig | undefined {
  return engineApi.getKernel(name, backendName);
}

/** Every kernel registered for `backendName`. */
export function getKernelsForBackend(backendName: string): KernelConfig[] {
  return engineApi.getKernelsForBackend(backendName);
}

/** Registers `config`, replacing the kernel of that name and backend if one is registered. */
export function replaceKernel(config: KernelConfig): void {
  if (engineApi.getKernel(config.kernelName, config.backendName)) engineApi.unregisterKernel(config.kernelName, config.backendName);
  engineApi.registerKernel(config);
}

/** Unregisters the kernel `name` of `backendName` if one is registered. */
export function removeKernel(name: string, backendName: string): void {
  if (engineApi.getKernel(name, backendName)) engineApi.unregisterKernel(name, backendName);
}

/** The initialised backend `name`, if any. */
export function findBackend(name: string): object | undefined {
  return engineApi.findBackend(name);
}

/** The cpu backend (for kernels bridged to it). */
export function cpuBackend(): KernelBackendLike {
  return engineApi.findBackend('cpu') as KernelBackendLike;
}
