import { tf } from './tf';
import { RsError } from './errors';
import { checkSingleInstance } from './instance';

/** What a backend package tells core about itself. */
export interface BackendInfo {
  /** The tfjs backend name (`cpu`, `wasm`). */
  name: string;
  /** Package that provides it, for messages. */
  package: string;
  /** Free-form capabilities (threads, simd...). */
  capabilities?: Record<string, unknown>;
}

const known = new Map<string, BackendInfo>();

/**
 * Called by a backend package's `install()` after it registered its tfjs backend.
 *
 * @example
 * registerBackend({ name: 'cpu', package: '@rs/backend-cpu' });
 */
export function registerBackend(info: BackendInfo): void {
  checkSingleInstance();
  known.set(info.name, info);
}

/** Backends installed so far. */
export function backends(): BackendInfo[] {
  return [...known.values()];
}

/**
 * Makes `name` the active backend. Install it first (`await install()` from its package).
 *
 * @example
 * await useBackend('cpu');
 */
export async function useBackend(name: string): Promise<BackendInfo> {
  checkSingleInstance();
  const info = known.get(name);
  if (!info) {
    throw new RsError('NO_BACKEND', `Backend '${name}' is not installed. Installed: ${[...known.keys()].join(', ') || 'none'}. Call install() from its package (e.g. @rs/backend-${name}) first.`);
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new RsError('NO_BACKEND', `Backend '${name}' failed to initialise.`);
  return info;
}

/**
 * Whether the active backend registers the kernel `kernelName`: ops and optimizers use a fused
 * kernel a backend provides (e.g. ADAM_UPDATE_KERNEL, GELU_KERNEL) and their tfjs ops otherwise.
 */
export function backendHasKernel(kernelName: string): boolean {
  const backend = tf.getBackend();
  return backend !== undefined && (tf.getKernel as (name: string, backend: string) => unknown)(kernelName, backend) !== undefined;
}
