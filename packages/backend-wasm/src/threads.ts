// Whether this runtime can give the wasm backend worker threads, and the check of a requested
// thread count: shared by `install` (./index.ts) and the inference runtime (./runtime.ts).
import { RsError } from '@rs/core';

/** Whether the threaded wasm build can run here, and if not, why. */
export interface ThreadSupport {
  available: boolean;
  /** Why threads are not available (undefined when they are). */
  reason?: string;
}

interface Globals {
  Deno?: unknown;
  SharedArrayBuffer?: unknown;
  crossOriginIsolated?: boolean;
}

/**
 * Whether this runtime can run the threaded wasm build: it needs `SharedArrayBuffer` (browsers
 * define it only in cross-origin isolated pages and their workers) and workers that can host
 * Emscripten's threads (Deno's cannot: its worker scope refuses the `location` the thread
 * script sets).
 *
 * @example
 * if (!threadSupport().available) console.log(threadSupport().reason);
 */
export function threadSupport(): ThreadSupport {
  const g = globalThis as Globals;
  if (g.Deno !== undefined) {
    return { available: false, reason: "Deno's workers cannot host the wasm runtime's threads (their global scope refuses the `location` that the thread script sets)" };
  }
  if (typeof g.SharedArrayBuffer !== 'function') {
    return {
      available: false,
      reason:
        'SharedArrayBuffer is not defined here; browsers define it only for cross-origin isolated pages (served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp) and their workers',
    };
  }
  if (g.crossOriginIsolated === false) {
    return { available: false, reason: 'this page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)' };
  }
  return { available: true };
}

/**
 * Checks a requested thread count where the Node loader does not run: undefined (the default:
 * threads where {@link threadSupport} allows, else one, the documented fallback) and 1 always
 * pass; more than 1 needs thread support (and `multiThreaded`, false for a loader that has only
 * the single-threaded build) and throws `UNSUPPORTED_RUNTIME` saying what is missing.
 */
export function checkThreads(threads: number | undefined, multiThreaded = true): void {
  if (threads === undefined) return;
  if (!Number.isInteger(threads) || threads < 1) throw new RsError('INVALID_ARGUMENT', `threads must be a positive integer, got ${String(threads)}.`, { threads });
  if (threads === 1) return;
  const support = threadSupport();
  const reason = !support.available ? support.reason : multiThreaded ? undefined : '@rs/backend-wasm/runtime ships only the single-threaded build (threads come with the full @rs/backend-wasm)';
  if (reason !== undefined) {
    throw new RsError('UNSUPPORTED_RUNTIME', `threads: ${threads} needs the threaded wasm build, which cannot run here: ${reason}. Leave \`threads\` unset (or pass 1) to run on one thread.`, {
      feature: 'threads',
      threads,
      reason,
    });
  }
}
