/**
 * @rs/nas/node: the Node-only parts of @rs/nas: a checkpoint file and a pool of worker threads
 * that evaluate architectures in parallel.
 */
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { isAbsolute } from 'node:path';
import { RsError } from '@rs/core';
import type { CheckpointStore, EvaluationContext, EvaluationResult, Evaluator, SearchCheckpoint } from './search';

/**
 * A checkpoint file (JSON), written atomically (temporary file, then rename) so that a search
 * killed while saving still finds the previous round's state.
 *
 * @example
 * await search({ ..., checkpoint: fileCheckpoint('search.json') }); // run again after a kill: it resumes
 */
export function fileCheckpoint(path: string): CheckpointStore {
  return {
    load() {
      if (!existsSync(path)) return undefined;
      try {
        return JSON.parse(readFileSync(path, 'utf8')) as SearchCheckpoint;
      } catch (cause) {
        throw new RsError('IO_CORRUPT', `checkpoint ${path} is not valid JSON; delete it to start over.`, { path, cause: String(cause) });
      }
    },
    save(checkpoint) {
      const temporary = `${path}.tmp`;
      writeFileSync(temporary, JSON.stringify(checkpoint));
      renameSync(temporary, path);
    },
  };
}

/** Options of {@link workerPool}. */
export interface WorkerPoolOptions {
  /**
   * Module (absolute path or URL) exporting `createEvaluator(options, { worker })`, which each
   * worker calls once (set up its backend and data there) and which returns an Evaluator.
   */
  module: string | URL;
  /** Number of worker threads. */
  workers: number;
  /** Passed to `createEvaluator` (structured-cloneable). */
  options?: unknown;
}

/** An Evaluator backed by worker threads; `close()` ends the workers. */
export interface WorkerPool extends Evaluator {
  readonly workers: number;
  close(): Promise<void>;
}

// The worker's bootstrap: loads the user's module, builds its evaluator, answers requests.
const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const mod = await import(workerData.module);
  if (typeof mod.createEvaluator !== 'function') throw new Error('module ' + workerData.module + ' does not export createEvaluator');
  const evaluator = await mod.createEvaluator(workerData.options, { worker: workerData.index });
  parentPort.on('message', async ({ id, arch, encoded, context }) => {
    try {
      const result = await evaluator.evaluate(arch, encoded, context);
      parentPort.postMessage({ id, result });
    } catch (error) {
      parentPort.postMessage({ id, error: { message: String(error && error.message || error), code: error && error.code } });
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((error) => parentPort.postMessage({ fatal: String(error && error.stack || error) }));
`;

/**
 * Evaluates architectures on `workers` worker threads (one evaluation per worker at a time);
 * use it as the `evaluator` of `search` with `parallel` = workers.
 *
 * @example
 * const pool = await workerPool({ module: new URL('./evaluate-mnist.mjs', import.meta.url), workers: 2 });
 * const result = await search({ space, strategy: 'random', evaluator: pool, parallel: 2, budget: { evaluations: 20 } });
 * await pool.close();
 */
export async function workerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  if (!Number.isInteger(options.workers) || options.workers < 1) throw new RsError('INVALID_ARGUMENT', `workers must be a positive integer, got ${String(options.workers)}.`);
  const module = options.module instanceof URL ? options.module.href : isAbsolute(options.module) ? pathToFileURL(options.module).href : options.module;
  const idle: Worker[] = [];
  const waiting: Array<(worker: Worker) => void> = [];
  const pending = new Map<number, { resolve: (r: EvaluationResult) => void; reject: (e: Error) => void; worker: Worker }>();
  let nextId = 0;
  const all: Worker[] = [];
  const release = (worker: Worker): void => {
    const next = waiting.shift();
    if (next) next(worker);
    else idle.push(worker);
  };
  await Promise.all(
    Array.from({ length: options.workers }, (_, index) => new Promise<void>((resolve, reject) => {
      const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { module, options: options.options, index } });
      all.push(worker);
      worker.on('message', (message: { ready?: boolean; fatal?: string; id?: number; result?: EvaluationResult; error?: { message: string; code?: string } }) => {
        if (message.ready) {
          idle.push(worker);
          resolve();
        } else if (message.fatal) {
          reject(new RsError('INVALID_ARGUMENT', `worker ${index} could not start the evaluator of ${module}: ${message.fatal}`, { module }));
        } else if (message.id !== undefined) {
          const job = pending.get(message.id);
          if (!job) return;
          pending.delete(message.id);
          release(worker);
          if (message.error) job.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
          else job.resolve(message.result as EvaluationResult);
        }
      });
      worker.on('error', (error) => {
        reject(error);
        for (const [id, job] of pending) {
          if (job.worker === worker) {
            pending.delete(id);
            job.reject(error);
          }
        }
      });
    })),
  ).catch(async (error: unknown) => {
    await Promise.all(all.map((w) => w.terminate()));
    throw error;
  });
  return {
    workers: options.workers,
    async evaluate(arch: number[], encoded: string, context?: EvaluationContext): Promise<EvaluationResult> {
      const worker = idle.shift() ?? (await new Promise<Worker>((resolve) => waiting.push(resolve)));
      return new Promise<EvaluationResult>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject, worker });
        worker.postMessage({ id, arch, encoded, context });
      });
    },
    async close() {
      await Promise.all(all.map((w) => w.terminate()));
    },
  };
}
