/**
 * @rs/backend-wasm/runtime: the wasm backend for a bundled application that only loads and
 * runs models (a page, a Web Worker). It runs the same stock kernels with the same forward
 * patches as `install` from `@rs/backend-wasm` (the transposed-matmul fast path, the fused-bias
 * fix, the block gather), so outputs are the same, and leaves out what training needs: no
 * tfjs-backend-cpu and no bridge to it, no gradient kernels (./kernels/inference-kernels.ts),
 * no thread loader (one thread: the single-threaded SIMD build). It imports tfjs-backend-wasm's
 * modules one by one, which bundlers resolve; under plain Node, Bun and Deno use
 * `@rs/backend-wasm`. docs/deploy.md has the measured bundle sizes.
 */
import { BackendWasm } from '@tensorflow/tfjs-backend-wasm/dist/backend_wasm.js';
import wasmFactory from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.js';
import { getKernel as tfGetKernel, registerBackend as tfRegisterBackend, registerKernel as tfRegisterKernel } from '@tensorflow/tfjs-core';
import { registerBackend, tf, RsError, type BackendInfo } from '@rs/core';
import { INFERENCE_KERNELS } from './kernels/inference-kernels';
import { registerInferencePatches } from './kernels/inference';
import { checkThreads } from './threads';
import { attachTfjsApi, type EmscriptenModule } from './wasm-api';
import { checkWasmPaths, type WasmBinaryName } from './wasm-paths';

export { threadSupport } from './threads';
export type { ThreadSupport } from './threads';
export type { WasmBinaryName } from './wasm-paths';

export interface RuntimeInstallOptions {
  /**
   * Worker threads: this runtime has the single-threaded build only. Unset or 1 runs on one
   * thread; more throws `UNSUPPORTED_RUNTIME`, saying why (no `SharedArrayBuffer` here, or the
   * full `@rs/backend-wasm` is needed for threads).
   */
  threads?: number;
  /**
   * Where the `.wasm` binaries are served: a folder URL ending in `/` (`tfjs-backend-wasm.wasm`
   * and `tfjs-backend-wasm-simd.wasm` are fetched from it), or one URL per binary. Default: next
   * to the script.
   */
  wasmPaths?: string | Partial<Record<WasmBinaryName, string>>;
  /** Make wasm the active backend (default true). */
  activate?: boolean;
}

let installed: BackendInfo | undefined;

/** Starts the single-threaded Emscripten module with the SIMD binary where SIMD is supported. */
async function startModule(paths: string | Record<WasmBinaryName, string> | undefined): Promise<EmscriptenModule> {
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const binary: WasmBinaryName = simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  const factory = wasmFactory as unknown as (config: Record<string, unknown>) => Promise<EmscriptenModule>;
  let failure: string | undefined;
  const module = await factory({
    locateFile: (path: string, prefix: string) => {
      if (!path.endsWith('.wasm')) return prefix + path;
      if (paths === undefined) return prefix + binary;
      return typeof paths === 'string' ? paths + binary : paths[binary];
    },
    onAbort: (what: unknown) => void (failure = String(what)),
  }).catch((error: unknown) => {
    throw new RsError('NO_BACKEND', `The wasm backend could not start: ${failure ?? String(error)}. Are the .wasm files served where \`wasmPaths\` says?`, { binary });
  });
  return attachTfjsApi(module);
}

/**
 * Registers the wasm backend (single-threaded, forward kernels only, the full backend's forward
 * patches) with TensorFlow.js and @rs/core and (by default) activates it. Later calls return the
 * first result.
 *
 * @example
 * import { install } from '@rs/backend-wasm/runtime';
 * await install({ wasmPaths: new URL('wasm/', document.baseURI).href });
 */
export async function install(options: RuntimeInstallOptions = {}): Promise<BackendInfo> {
  if (installed) {
    if (options.activate !== false) await tf.setBackend('wasm');
    return installed;
  }
  checkThreads(options.threads, false);
  const paths = options.wasmPaths === undefined ? undefined : checkWasmPaths(options.wasmPaths);
  tfRegisterBackend('wasm', async () => new BackendWasm((await startModule(paths)) as never), 2);
  for (const config of INFERENCE_KERNELS) if (!tfGetKernel(config.kernelName, 'wasm')) tfRegisterKernel(config as never);
  const patched = registerInferencePatches('wasm');
  const info: BackendInfo = {
    name: 'wasm',
    package: '@rs/backend-wasm/runtime',
    capabilities: { simd: true, threads: 1, patchedKernels: patched, filledKernels: [], inferenceOnly: true },
  };
  registerBackend(info);
  installed = info;
  if (options.activate !== false) {
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new RsError('NO_BACKEND', 'The wasm backend failed to initialise (are the .wasm files served where `wasmPaths` says?).');
  }
  return info;
}
