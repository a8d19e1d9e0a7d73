/**
 * @rs/backend-cpu: the reference backend. Every other backend is compared against it by core's
 * conformance suite. It runs anywhere (plain JavaScript) and is correct rather than fast.
 */
import '@tensorflow/tfjs-backend-cpu';
import { registerBackend, tf, type BackendInfo } from '@rs/core';

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
  // tfjs prints a banner recommending tfjs-node on the cpu backend's first use; that advice
  // does not apply here (tfjs-node cannot be installed without internet), so it is silenced.
  const backend = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (backend && 'firstUse' in backend) backend.firstUse = false;
  if (options.activate !== false) await tf.setBackend('cpu');
  return INFO;
}

/** Backend name, for `useBackend('cpu')`. */
export const name = 'cpu';
