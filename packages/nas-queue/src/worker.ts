import { hostname } from 'node:os';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type Job } from 'bullmq';
import { RsError } from '@rs/core';
import type { Evaluator } from '@rs/nas';
import { checkRedis, redisOptions, DEFAULT_QUEUE } from './connection';
import type { TrialJob, TrialOutcome } from './controller';

/** An evaluator a worker can run: a module exporting `createEvaluator(options, { worker })` (as for `workerPool`). */
export interface EvaluatorModule {
  module: string | URL;
  options?: unknown;
}

/** Options of {@link startWorker}. */
export interface QueueWorkerOptions {
  url: string;
  /** Queue name. Default 'rs-nas'. */
  queue?: string;
  /**
   * Evaluators by name (a job names the one it needs; all are created before the first job is
   * taken), or a function that makes the evaluator of a name on its first job (e.g. from settings
   * encoded in the name, as `rs worker` does); it throws for a name it does not know.
   */
  evaluators: Record<string, EvaluatorModule> | ((name: string) => Evaluator | Promise<Evaluator>);
  /** Name reported with each result. Default `<host>:<pid>`. */
  name?: string;
  /**
   * How long a job's lock lasts without renewal (ms). A worker that dies loses its jobs to another
   * worker after about this long (the stalled-job check runs every `lockMs` too). Default 30000.
   */
  lockMs?: number;
  /** Times a job may be lost by dead workers before it fails. Default 5. */
  maxStalls?: number;
  connectTimeoutMs?: number;
}

/** A running queue worker. */
export interface QueueWorker {
  readonly name: string;
  /** Jobs this worker completed. */
  readonly completed: number;
  /** Stops taking jobs, waits for the running one, closes the connections. */
  close(): Promise<void>;
}

/**
 * Starts a worker process's loop: takes one trial at a time from the queue (BullMQ `Worker`),
 * evaluates it with the evaluator the job names, and stores the result as the job's return value.
 * Unreachable Redis: QUEUE_UNREACHABLE naming the URL. An evaluator that throws fails the job with
 * its message (the controller then reports TRIAL_FAILED); a job whose evaluator is unknown here
 * fails naming it.
 *
 * @example
 * await startWorker({ url: 'redis://10.0.0.5:6379', evaluators: { nb201: { module: './nb201-evaluator.mjs' } } });
 */
export async function startWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const connection = redisOptions(options.url);
  const resolver = typeof options.evaluators === 'function' ? options.evaluators : undefined;
  const modules = typeof options.evaluators === 'function' ? {} : (options.evaluators ?? {});
  const names = Object.keys(modules);
  if (!resolver && names.length === 0) throw new RsError('INVALID_ARGUMENT', 'a worker needs at least one evaluator (name -> module, or a function of the name).');
  const lockMs = options.lockMs ?? 30_000;
  if (!Number.isFinite(lockMs) || lockMs < 200) throw new RsError('INVALID_ARGUMENT', `lockMs must be at least 200, got ${String(options.lockMs)}.`);
  await checkRedis(options.url, options.connectTimeoutMs ?? 3000);
  const workerName = options.name ?? `${hostname()}:${process.pid}`;
  const created = new Map<string, Promise<Evaluator>>();
  const evaluatorFor = (name: string): Promise<Evaluator> => {
    if (resolver) {
      let evaluator = created.get(name);
      if (!evaluator) {
        evaluator = (async () => resolver(name))();
        created.set(name, evaluator);
        evaluator.catch(() => created.delete(name));
      }
      return evaluator;
    }
    const spec = Object.prototype.hasOwnProperty.call(modules, name) ? modules[name] : undefined;
    if (!spec) return Promise.reject(new Error(`worker ${workerName} has no evaluator '${name}' (it has: ${names.join(', ')})`));
    let evaluator = created.get(name);
    if (!evaluator) {
      const href = spec.module instanceof URL ? spec.module.href : isAbsolute(spec.module) ? pathToFileURL(spec.module).href : spec.module;
      evaluator = import(href).then(async (mod: { createEvaluator?: (o: unknown, c: { worker: string }) => Evaluator | Promise<Evaluator> }) => {
        if (typeof mod.createEvaluator !== 'function') throw new Error(`module ${href} does not export createEvaluator`);
        return mod.createEvaluator(spec.options, { worker: workerName });
      });
      created.set(name, evaluator);
    }
    return evaluator;
  };
  // Create every evaluator before taking jobs: loading a module and its data can block the event
  // loop for seconds, and a job held meanwhile would lose its lock and run twice.
  await Promise.all(names.map((name) => evaluatorFor(name)));
  let completed = 0;
  const run = async (job: Job<TrialJob, TrialOutcome>): Promise<TrialOutcome> => {
    const evaluator = await evaluatorFor(job.data.evaluator);
    const startedAt = Date.now();
    const result = await evaluator.evaluate(job.data.arch, job.data.encoded, job.data.context);
    if (typeof result?.validation !== 'number' || !Number.isFinite(result.validation)) {
      throw new Error(`evaluator '${job.data.evaluator}' returned no finite validation score for ${job.data.encoded}`);
    }
    completed += 1;
    return { ...result, worker: workerName, startedAt, finishedAt: Date.now(), attempt: job.attemptsStarted };
  };
  const worker = new Worker<TrialJob, TrialOutcome>(options.queue ?? DEFAULT_QUEUE, run, {
    connection,
    name: workerName,
    concurrency: 1,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: options.maxStalls ?? 5,
  });
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
  return {
    name: workerName,
    get completed() {
      return completed;
    },
    async close() {
      await worker.close();
    },
  };
}
