// The browser side of the cross-runtime check (test/deploy.test.ts), bundled into one module
// with @rs/backend-wasm/runtime. In a page it defines `rsRun` (runs here) and `rsRunInWorker`
// (runs this same module as a Web Worker); in a worker it answers messages. Each run first asks
// for 4 threads, which a page without cross-origin isolation (no SharedArrayBuffer) refuses with
// a typed error, then installs the backend with its default (one thread) and computes.
import { isRsError } from '@rs/core';
import { install, threadSupport } from '@rs/backend-wasm/runtime';
import { computeChecked, type ComputeInputs, type ComputeOutputs } from './compute';

export interface HarnessResult {
  outputs: ComputeOutputs;
  /** What `install({ threads: 4 })` did: the typed error it threw, or nothing. */
  threadsRequest: { threw: boolean; code?: string; message?: string; sharedArrayBuffer: boolean; support: ReturnType<typeof threadSupport> };
}

const wasmPaths = new URL('/wasm/', location.href).href;

async function run(inputs: ComputeInputs): Promise<HarnessResult> {
  let threadsRequest: HarnessResult['threadsRequest'] = { threw: false, sharedArrayBuffer: typeof SharedArrayBuffer === 'function', support: threadSupport() };
  try {
    await install({ threads: 4, wasmPaths });
  } catch (error) {
    threadsRequest = { ...threadsRequest, threw: true, code: isRsError(error) ? error.code : undefined, message: String((error as Error).message) };
  }
  await install({ wasmPaths });
  return { outputs: await computeChecked(inputs), threadsRequest };
}

const scope = globalThis as unknown as Record<string, unknown> & { WorkerGlobalScope?: new () => unknown; postMessage: (message: unknown) => void };
if (typeof scope.WorkerGlobalScope === 'function' && scope instanceof scope.WorkerGlobalScope) {
  scope.onmessage = (event: MessageEvent<ComputeInputs>) => {
    run(event.data).then(
      (result) => scope.postMessage({ ok: true, result }),
      (error: unknown) => scope.postMessage({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  };
} else {
  scope.rsRun = run;
  scope.rsRunInWorker = (inputs: ComputeInputs) =>
    new Promise<HarnessResult>((resolve, reject) => {
      const worker = new Worker(import.meta.url, { type: 'module' });
      worker.onmessage = (event: MessageEvent<{ ok: boolean; result?: HarnessResult; error?: string }>) => {
        worker.terminate();
        if (event.data.ok) resolve(event.data.result as HarnessResult);
        else reject(new Error(`in the worker: ${event.data.error}`));
      };
      worker.onerror = (event) => reject(new Error(`worker error: ${event.message}`));
      worker.postMessage(inputs);
    });
}
