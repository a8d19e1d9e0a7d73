// Node-only: start the threaded SIMD build of tfjs-backend-wasm with real worker files.
// Stock tfjs-backend-wasm gives its pthread workers a `blob:` URL, which Node's Worker rejects,
// so it runs single-threaded in Node. Emscripten accepts file paths for both the worker script
// and the main script, which Node can load. Everything here is reached through dynamic imports
// so that browser bundles never see `node:` modules.

import { attachTfjsApi, type EmscriptenModule } from './wasm-api';

export async function initThreadedModule(threads: number): Promise<EmscriptenModule> {
  const { createRequire } = await import('node:module');
  const { writeFileSync, existsSync, mkdirSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { dirname, join } = await import('node:path');
  const require = createRequire(import.meta.url);
  const stockMain = require.resolve('@tensorflow/tfjs-backend-wasm');
  const packageRoot = dirname(dirname(stockMain));
  const wasmOut = join(packageRoot, 'wasm-out');
  const mainScript = join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  const wasmBinary = join(wasmOut, 'tfjs-backend-wasm-threaded-simd.wasm');
  const { wasmWorkerContents } = require(join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  const factory = require(mainScript) as (config: Record<string, unknown>) => Promise<EmscriptenModule>;
  // The worker script is written once per version into the temp directory (content-addressed
  // by the package version, so concurrent processes agree on its contents).
  const version = (require(join(packageRoot, 'package.json')) as { version: string }).version;
  const folder = join(tmpdir(), 'rs-backend-wasm');
  const workerFile = join(folder, `tfjs-backend-wasm-threaded-simd-${version}-1.worker.cjs`);
  if (!existsSync(workerFile)) {
    mkdirSync(folder, { recursive: true });
    const partial = `${workerFile}.${process.pid}.tmp`;
    // As the stock loader does: the module string holds real newlines where the script had `\n`.
    writeFileSync(partial, wasmWorkerContents.replace(/\n/g, '\\n'));
    const { renameSync } = await import('node:fs');
    renameSync(partial, workerFile);
  }
  const module = await factory({
    mainScriptUrlOrBlob: mainScript,
    locateFile: (path: string) => {
      if (path.endsWith('.worker.js')) return workerFile;
      if (path.endsWith('.wasm')) return wasmBinary;
      return join(wasmOut, path);
    },
    // Emscripten starts this many workers up front (the pool grows on demand otherwise).
    PTHREAD_POOL_SIZE: threads,
  });
  return attachTfjsApi(module);
}

/**
 * Lets Node exit while the pool's worker threads are alive: the main thread waits on them
 * synchronously (Atomics) during kernels, so they need not hold the event loop open.
 */
export function unrefWorkers(module: EmscriptenModule): void {
  const pthread = module.PThread as { unusedWorkers: { unref?: () => void }[]; runningWorkers: { unref?: () => void }[]; allocateUnusedWorker: () => void } | undefined;
  if (!pthread) return;
  for (const worker of [...pthread.unusedWorkers, ...pthread.runningWorkers]) worker.unref?.();
  const allocate = pthread.allocateUnusedWorker.bind(pthread);
  pthread.allocateUnusedWorker = () => {
    allocate();
    pthread.unusedWorkers[pthread.unusedWorkers.length - 1]?.unref?.();
  };
}
