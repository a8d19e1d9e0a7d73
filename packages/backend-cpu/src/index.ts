/**
 * @rs/backend-cpu: the reference backend. Every other backend is compared against it by core's
 * conformance suite. It runs anywhere (plain JavaScript) and is correct rather than fast.
 */
import '@tensorflow/tfjs-backend-cpu';
import { registerBackend, tf, DENSE_KERNEL, type BackendInfo } from '@rs/core';

const INFO: BackendInfo = {
  name: 'cpu',
  package: '@rs/backend-cpu',
  capabilities: { reference: true, threads: 1, simd: false },
};

/**
 * Registers the CPU backend with @rs/core and makes it active.
 *
 * @example
 * import { install } from '@rs/backend-cpu';
 * await install();
 */
export async function install(options: { activate?: boolean } = {}): Promise<BackendInfo> {
  registerBackend(INFO);
  registerDenseKernel();
  // tfjs prints a banner recommending tfjs-node on the cpu backend's first use; that advice
  // does not apply here (tfjs-node cannot be installed without internet), so it is silenced.
  const backend = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (backend && 'firstUse' in backend) backend.firstUse = false;
  if (options.activate !== false) await tf.setBackend('cpu');
  return INFO;
}

/** Core's dense kernel (DENSE_KERNEL): the cpu `_FusedMatMul`, which takes rank-2 operands as they are. */
function registerDenseKernel(): void {
  const registry = tf as unknown as { getKernel(name: string, backend: string): { kernelFunc: unknown } | undefined; registerKernel(config: { kernelName: string; backendName: string; kernelFunc: unknown }): void };
  const fused = registry.getKernel('_FusedMatMul', 'cpu');
  if (fused && !registry.getKernel(DENSE_KERNEL, 'cpu')) registry.registerKernel({ kernelName: DENSE_KERNEL, backendName: 'cpu', kernelFunc: fused.kernelFunc });
}

/** Backend name, for `useBackend('cpu')`. */
export const name = 'cpu';
