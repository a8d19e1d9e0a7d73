/**
 * @rs/backend-wasm: TensorFlow.js' WASM-SIMD backend made fit for training:
 * - every kernel the cpu backend has and wasm lacks is filled in (the depthwise backprops,
 *   depthwise backprops, UnsortedSegmentSum for embedding gradients...), so every built-in op
 *   and its gradient runs;
 * - matmuls with a transposed operand take XNNPACK's fast path (every matmul gradient has one);
 * - in Node, the threaded SIMD build runs with real worker threads (default: all cores).
 */
import '@tensorflow/tfjs-backend-cpu';
import * as stock from '@tensorflow/tfjs-backend-wasm';
import { registerBackend, tf, type BackendInfo } from '@rs/core';
import { WRONG_ON_WASM, attachSimdKernels, fillMissingKernels, registerKernelPatches, registerSimdConvKernels } from './kernels/index';
import { checkWasmPaths, type WasmBinaryName } from './wasm-paths';
import { checkThreads, threadSupport } from './threads';

export { threadSupport } from './threads';
export { simdKernelCalls, withoutSimdKernels } from './kernels/index';
export type { ThreadSupport } from './threads';

export type { WasmBinaryName } from './wasm-paths';

export interface WasmInstallOptions {
  /**
   * Worker threads (Node default: all logical cores). 1 runs single-threaded. Elsewhere the
   * default is the stock loader's choice: threads where `SharedArrayBuffer` is available
   * (cross-origin isolated pages), else one (Deno: always one). Asking for more than 1 where
   * threads cannot run throws `UNSUPPORTED_RUNTIME` saying what is missing.
   */
  threads?: number;
  /** Make wasm the active backend (default true). */
  activate?: boolean;
  /** Keep the stock transposed-matmul kernels (for benchmarks of the stock backend). */
  stockMatMul?: boolean;
  /** Do not fill kernels the stock backend lacks (for benchmarks of the stock backend). */
  stockKernels?: boolean;
  /**
   * Browsers only: where the `.wasm` binaries are served, given to tfjs-backend-wasm's
   * `setWasmPaths`: a folder URL ending in `/` (`'./wasm/'`, relative to the page), or one URL
   * per binary (`'tfjs-backend-wasm.wasm'`, `'tfjs-backend-wasm-simd.wasm'`,
   * `'tfjs-backend-wasm-threaded-simd.wasm'`). Default: next to the page, where a bundler
   * rarely puts them. Node finds the binaries in the installed package and ignores this.
   */
  wasmPaths?: string | Partial<Record<WasmBinaryName, string>>;
}

// Deno reports a Node version too, but its workers cannot run the threaded Node loader below:
// it takes the stock loader's single-threaded path (./threads.ts).
const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string' && (globalThis as { Deno?: unknown }).Deno === undefined;
let installed: BackendInfo | undefined;

/**
 * The wasm runtime caps its thread pool at half the logical cores it reports (Emscripten's
 * `emscripten_num_logical_cores`, which is `os.cpus().length` in Node), so a 2-core machine
 * gets one thread whatever is asked. While the backend starts (the only moment the pool size is
 * read), `os.cpus()` reports `cores` entries so that the requested count is honoured.
 */
async function withReportedCores<T>(cores: number, body: () => Promise<T>): Promise<T> {
  const os = nodeOs as { cpus: () => unknown[] } | undefined;
  if (!os) return body();
  const original = os.cpus;
  const real = original.call(os);
  os.cpus = () => Array.from({ length: Math.max(cores, real.length) }, (_, i) => real[i % real.length]);
  try {
    return await body();
  } finally {
    os.cpus = original;
  }
}
let nodeOs: unknown;

function defaultThreads(): number {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return Math.max(1, nav?.hardwareConcurrency ?? 1);
}

/**
 * Wraps the registered wasm backend factory so that the package's SIMD kernels are instantiated
 * on the new backend's heap as it starts (asynchronously: browsers refuse to compile modules of
 * this size synchronously on the main thread).
 */
function attachSimdOnInit(): void {
  const registry = (tf.engine() as unknown as { registryFactory: Record<string, { factory: () => unknown; priority: number } | undefined> }).registryFactory;
  const entry = registry.wasm;
  if (!entry) return;
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const backend = await entry.factory();
      await attachSimdKernels(backend);
      return backend as never;
    },
    entry.priority,
  );
}

/**
 * Registers the wasm backend with TensorFlow.js and @rs/core and (by default) activates it.
 * Call once per process; later calls return the first result.
 *
 * @example
 * import { install } from '@rs/backend-wasm';
 * await install();               // all cores in Node
 * await install({ threads: 1 }); // single-threaded
 * await install({ wasmPaths: './wasm/' }); // in a browser: the folder the bundler put the .wasm files in
 */
export async function install(options: WasmInstallOptions = {}): Promise<BackendInfo> {
  if (installed) {
    if (options.activate !== false) await tf.setBackend('wasm');
    return installed;
  }
  let threads = 1;
  if (isNode) {
    const osModule = await import('node:os');
    nodeOs = osModule.default;
    const { availableParallelism, cpus } = osModule;
    threads = options.threads ?? (typeof availableParallelism === 'function' ? availableParallelism() : cpus().length);
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`[INVALID_ARGUMENT] threads must be a positive integer, got ${String(options.threads)}.`);
    const { initThreadedModule, unrefWorkers } = await import('./node-init');
    // Replace the stock factory (blob: workers, single-threaded in Node) with ours.
    tf.removeBackend('wasm');
    stock.setThreadsCount(threads);
    tf.registerBackend(
      'wasm',
      async () => {
        const backend = await withReportedCores(threads * 2, async () => new stock.BackendWasm((await initThreadedModule(threads)) as never));
        unrefWorkers((backend as unknown as { wasm: Parameters<typeof unrefWorkers>[0] }).wasm);
        return backend;
      },
      2,
    );
  } else {
    checkThreads(options.threads);
    // One thread when asked, or where threads cannot run (the stock check would pick the threaded build in Deno).
    if (options.threads === 1 || !threadSupport().available) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    else if (options.threads !== undefined) stock.setThreadsCount(options.threads);
    threads = options.threads ?? defaultThreads();
    if (options.wasmPaths !== undefined) stock.setWasmPaths(checkWasmPaths(options.wasmPaths));
  }
  if (!options.stockKernels) attachSimdOnInit();
  const patched = registerKernelPatches('wasm', options);
  const filled = options.stockKernels ? [] : fillMissingKernels('wasm', WRONG_ON_WASM);
  // Over the cpu bridge's kernels (MaxPoolGrad's included): the SIMD module's gradients of convolutions and pools.
  if (!options.stockKernels) patched.push(...registerSimdConvKernels('wasm'));
  installed = {
    name: 'wasm',
    package: '@rs/backend-wasm',
    capabilities: { simd: true, threads, patchedKernels: [...new Set(patched)], filledKernels: filled },
  };
  registerBackend(installed);
  if (options.activate !== false) {
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new Error('[NO_BACKEND] the wasm backend failed to initialise.');
    // In browsers the stock loader decides (one thread without cross-origin isolation).
    installed.capabilities = { ...installed.capabilities, threads: stock.getThreadsCount() };
  }
  return installed;
}

/**
 * Shuts the wasm backend down (its worker threads included) so that a Node process can exit.
 * Needed only if you keep the process alive otherwise; see README.
 *
 * @example
 * await shutdown();
 */
export function shutdown(): void {
  const names = Object.keys((tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory);
  if (names.includes('wasm')) tf.removeBackend('wasm');
  installed = undefined;
}

/** Threads the running wasm backend uses. */
export function threadsCount(): number {
  return stock.getThreadsCount();
}

export const name = 'wasm';
