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
import { WRONG_ON_WASM, fillMissingKernels, registerKernelPatches } from './kernels/index';

export interface WasmInstallOptions {
  /**
   * Worker threads in Node (default: all logical cores). 1 runs single-threaded. Ignored in
   * browsers, where the stock loader decides (threads need cross-origin isolation there).
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

/** File names of the three binaries of tfjs-backend-wasm (plain, SIMD, threaded SIMD). */
export type WasmBinaryName = 'tfjs-backend-wasm.wasm' | 'tfjs-backend-wasm-simd.wasm' | 'tfjs-backend-wasm-threaded-simd.wasm';

const WASM_BINARIES: readonly WasmBinaryName[] = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
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
    threads = options.threads ?? defaultThreads();
    if (options.wasmPaths !== undefined) setBrowserWasmPaths(options.wasmPaths);
  }
  const patched = registerKernelPatches('wasm', options);
  const filled = options.stockKernels ? [] : fillMissingKernels('wasm', WRONG_ON_WASM);
  installed = {
    name: 'wasm',
    package: '@rs/backend-wasm',
    capabilities: { simd: true, threads, patchedKernels: patched, filledKernels: filled },
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

function setBrowserWasmPaths(paths: string | Partial<Record<WasmBinaryName, string>>): void {
  if (typeof paths === 'string') {
    if (paths === '') throw new Error('[INVALID_ARGUMENT] wasmPaths is an empty string; give the folder the .wasm files are served from, ending in "/".');
    // tfjs appends the file name to the prefix as is: a missing slash would fetch 'wasmtfjs-...'.
    stock.setWasmPaths(paths.endsWith('/') ? paths : `${paths}/`);
    return;
  }
  const missing = WASM_BINARIES.filter((name) => typeof paths[name] !== 'string' || paths[name] === '');
  if (missing.length > 0) {
    throw new Error(`[INVALID_ARGUMENT] wasmPaths has no URL for ${missing.join(', ')}; give one URL per binary or a folder URL.`);
  }
  stock.setWasmPaths(paths as Record<WasmBinaryName, string>);
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
