import { Queue, QueueEvents, Job } from 'bullmq';
import { RsError } from '@rs/core';
import { search, type EvaluationContext, type EvaluationResult, type Evaluator, type SearchOptions, type SearchResult } from '@rs/nas';
import { fileCheckpoint } from '@rs/nas/node';
import { checkRedis, redisOptions, DEFAULT_QUEUE } from './connection';

/** What a job of the queue carries (JSON). */
export interface TrialJob {
  /** The search this trial belongs to. */
  search: string;
  /** Name of the evaluator the worker must use (workers map names to modules). */
  evaluator: string;
  arch: number[];
  encoded: string;
  context: EvaluationContext;
}

/** What a worker returns for a job: the evaluation, and where and when it ran. */
export interface TrialOutcome extends EvaluationResult {
  worker: string;
  /** Epoch milliseconds when the evaluation started and finished on the worker. */
  startedAt: number;
  finishedAt: number;
  /** How many times a worker started this job (more than 1: a worker died and it was retried). */
  attempt: number;
}

/** One trial as the queue ran it (for reports): the job id, the worker, times, attempts. */
export interface QueueTrialRecord extends TrialOutcome {
  trial: number;
  jobId: string;
  fidelity?: number;
  encoded: string;
  /** The evaluator's message when the trial failed (validation is then NaN). */
  error?: string;
}

/** Options of {@link queueEvaluator}. */
export interface QueueEvaluatorOptions {
  /** `redis://host:port` of the Redis server the workers listen to. */
  url: string;
  /** Queue name. Default 'rs-nas'. */
  queue?: string;
  /** Id of the search: jobs are `<search>-t<trial index>`, so a resumed controller finds its jobs again. */
  search: string;
  /** Name of the evaluator the workers run (see `startWorker`'s `evaluators`). */
  evaluator: string;
  /** Give up (QUEUE_UNREACHABLE) when Redis does not answer within this many ms at start. Default 3000. */
  connectTimeoutMs?: number;
}

/** An Evaluator that runs each trial as a job on a BullMQ queue; `close()` ends its connections. */
export interface QueueEvaluator extends Evaluator {
  /** Every trial the queue finished for this evaluator, in the order the results arrived. */
  readonly records: QueueTrialRecord[];
  /**
   * The records of trials 0..count-1 of this search as the queue holds them (also those that a
   * controller killed earlier saw finish), in trial order; trials the queue has not finished are left out.
   */
  history(count: number): Promise<QueueTrialRecord[]>;
  close(): Promise<void>;
}

const jobIdOf = (searchId: string, trial: number): string => `${searchId}-t${trial}`;

/**
 * Connects to the queue (QUEUE_UNREACHABLE naming the URL when Redis does not answer; nothing is
 * enqueued then) and returns an Evaluator whose `evaluate(arch, encoded, { trial })` adds the job
 * `<search>-t<trial>` and waits for its result. Job ids make results idempotent: adding a job id
 * that exists (a controller resumed after a kill) adds nothing and returns the stored result, or
 * waits for the running one; a job that a dead worker held is retried by another worker once its
 * lock expires, and whichever attempt completes is the one result stored. Use it as the evaluator
 * of `search`; `search` observes trials in proposal (trial) order, not in arrival order.
 */
export async function queueEvaluator(options: QueueEvaluatorOptions): Promise<QueueEvaluator> {
  const { url, search: searchId, evaluator: name } = options;
  if (typeof searchId !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(searchId)) {
    throw new RsError('INVALID_ARGUMENT', `search id must be letters, digits, '_', '.' or '-', got '${String(searchId)}'.`, { search: searchId });
  }
  if (typeof name !== 'string' || name.length === 0) throw new RsError('INVALID_ARGUMENT', 'evaluator must name the evaluator the workers run.');
  const connection = redisOptions(url);
  await checkRedis(url, options.connectTimeoutMs ?? 3000);
  const queueName = options.queue ?? DEFAULT_QUEUE;
  const queue = new Queue<TrialJob, TrialOutcome>(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  const records: QueueTrialRecord[] = [];
  // The trials being waited for: close() rejects them.
  const waiting = new Set<(error: Error) => void>();
  let closed = false;
  const recordOf = (job: Job<TrialJob, TrialOutcome>, state: 'completed' | 'failed'): QueueTrialRecord => {
    const { context, encoded } = job.data;
    const record: QueueTrialRecord =
      state === 'completed'
        ? { ...job.returnvalue, trial: context.trial, jobId: job.id as string, encoded }
        : {
            validation: Number.NaN, trial: context.trial, jobId: job.id as string, encoded, worker: job.processedBy ?? 'unknown',
            startedAt: job.processedOn ?? 0, finishedAt: job.finishedOn ?? 0, attempt: job.attemptsStarted, error: job.failedReason,
          };
    if (context.fidelity !== undefined) record.fidelity = context.fidelity;
    return record;
  };
  return {
    records,
    async history(count) {
      const found = await Promise.all(
        Array.from({ length: count }, async (_, trial) => {
          const job = await Job.fromId<TrialJob, TrialOutcome>(queue, jobIdOf(searchId, trial));
          if (!job) return undefined;
          if (job.finishedOn && job.returnvalue) return recordOf(job, 'completed');
          if (job.finishedOn && job.failedReason) return recordOf(job, 'failed');
          return undefined;
        }),
      );
      return found.filter((r): r is QueueTrialRecord => r !== undefined);
    },
    async evaluate(arch, encoded, context) {
      if (!context) throw new RsError('INVALID_ARGUMENT', 'a queue evaluator needs the trial index (run it through search()).');
      if (closed) throw new RsError('INVALID_ARGUMENT', `the evaluator of queue '${queueName}' is closed.`);
      const jobId = jobIdOf(searchId, context.trial);
      const data: TrialJob = { search: searchId, evaluator: name, arch: [...arch], encoded, context };
      let job: Job<TrialJob, TrialOutcome> | undefined;
      try {
        await queue.add('trial', data, { jobId, attempts: 1, removeOnComplete: false, removeOnFail: false });
        // A job id that already existed keeps its first data: make sure it is this trial.
        job = await Job.fromId<TrialJob, TrialOutcome>(queue, jobId);
      } catch (cause) {
        const why = closed ? 'the evaluator was closed' : (cause as Error).message;
        throw new RsError('TRIAL_FAILED', `trial ${context.trial} (${encoded}) could not be put on queue '${queueName}' at ${url}: ${why}`, { jobId, trial: context.trial });
      }
      if (!job) throw new RsError('INVALID_ARGUMENT', `job ${jobId} vanished from queue '${queueName}' at ${url} right after it was added.`, { jobId });
      if (job.data.encoded !== encoded || JSON.stringify(job.data.context) !== JSON.stringify(context)) {
        throw new RsError('INVALID_ARGUMENT', `queue '${queueName}' already holds job ${jobId} for ${job.data.encoded} (${JSON.stringify(job.data.context)}), not ${encoded}: another search used the id '${searchId}'.`, { jobId });
      }
      let outcome: TrialOutcome;
      try {
        outcome = await waitForJob(queue, events, jobId, waiting);
      } catch (cause) {
        const failed = await Job.fromId<TrialJob, TrialOutcome>(queue, jobId).catch(() => undefined);
        if (failed) records.push(recordOf(failed, 'failed'));
        throw new RsError('TRIAL_FAILED', `trial ${context.trial} (${encoded}) failed on the queue: ${(cause as Error).message}`, { jobId, trial: context.trial });
      }
      const record: QueueTrialRecord = { ...outcome, trial: context.trial, jobId, encoded };
      if (context.fidelity !== undefined) record.fidelity = context.fidelity;
      records.push(record);
      const result: EvaluationResult = { validation: outcome.validation };
      if (outcome.test !== undefined) result.test = outcome.test;
      if (outcome.cost !== undefined) result.cost = outcome.cost;
      return result;
    },
    async close() {
      closed = true;
      for (const cancel of [...waiting]) cancel(new Error(`the evaluator of queue '${queueName}' was closed before the trial finished`));
      await Promise.all([events.close(), queue.close()]);
    },
  };
}

/**
 * Waits for a trial's job to finish: its `completed` or `failed` event, or its state when it
 * finished before the listeners were attached. bullmq's `job.waitUntilFinished` reads that state
 * inside an async Promise executor, so a connection closed during the read (the controller
 * closing while trials are still pending) became an unhandled rejection, which ends a Node
 * process; and closing the queue left it waiting forever. Here every Redis call's failure
 * settles the returned promise, and `cancels` holds a function that rejects it (the evaluator's
 * `close()` calls them before it closes the connections).
 */
function waitForJob(queue: Queue<TrialJob, TrialOutcome>, events: QueueEvents, jobId: string, cancels: Set<(error: Error) => void>): Promise<TrialOutcome> {
  // Per-job event names (`completed:<id>`) are not in bullmq's typed listener map.
  type Listener = (...args: any[]) => void;
  const on = (emitter: unknown, name: string, listener: Listener): void => void (emitter as { on(n: string, l: Listener): unknown }).on(name, listener);
  const off = (emitter: unknown, name: string, listener: Listener): void => void (emitter as { off(n: string, l: Listener): unknown }).off(name, listener);
  return new Promise<TrialOutcome>((resolve, reject) => {
    let settled = false;
    const completed = `completed:${jobId}`;
    const failed = `failed:${jobId}`;
    const finish = (error: Error | undefined, outcome?: TrialOutcome): void => {
      if (settled) return;
      settled = true;
      off(events, completed, onCompleted);
      off(events, failed, onFailed);
      cancels.delete(cancel);
      if (error) reject(error);
      else resolve(outcome as TrialOutcome);
    };
    // The job's stored state: finished (completed or failed) settles; otherwise the events will.
    const read = (): void => {
      Job.fromId<TrialJob, TrialOutcome>(queue, jobId).then(
        (job) => {
          if (!job?.finishedOn) return;
          if (job.returnvalue !== null && job.returnvalue !== undefined) finish(undefined, job.returnvalue);
          else finish(new Error(job.failedReason || `job ${jobId} finished without a result`));
        },
        (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
      );
    };
    const onCompleted = (): void => read();
    const onFailed = (args: { failedReason?: string }): void => finish(new Error(args?.failedReason || `job ${jobId} failed`));
    const cancel = (error: Error): void => finish(error);
    cancels.add(cancel);
    on(events, completed, onCompleted);
    on(events, failed, onFailed);
    read();
  });
}

/** Options of {@link queueSearch}: those of `search` without the evaluator, plus the queue's. */
export interface QueueSearchOptions extends Omit<SearchOptions, 'evaluator' | 'checkpoint'>, Omit<QueueEvaluatorOptions, 'search'> {
  /** Id of the search (job ids derive from it); a controller restarted with the same id resumes. */
  search: string;
  /** Checkpoint file; a controller restarted with it resumes without re-running finished trials. */
  checkpoint?: string;
}

/**
 * A search whose trials run on the queue: `search` with a {@link queueEvaluator} and, when
 * `checkpoint` is given, a checkpoint file. `parallel` is the number of trials in the queue at
 * once (give it the number of workers); the trajectory depends on `parallel` and `lookahead` only,
 * never on which worker finishes first, and equals a local `search` with the same settings.
 *
 * @example
 * const result = await queueSearch({ url: 'redis://127.0.0.1:6379', search: 'nb201-seed1', evaluator: 'nb201',
 *   space: nb201Space(), strategy: 'evolution', budget: { evaluations: 100 }, seed: 1, parallel: 4, checkpoint: 'search.json' });
 */
export async function queueSearch(options: QueueSearchOptions): Promise<SearchResult & { records: QueueTrialRecord[] }> {
  // records: every trial of the search as the queue ran it (after a resume too), in trial order.
  const { url, queue, search: searchId, evaluator: name, connectTimeoutMs, checkpoint, ...rest } = options;
  const evaluator = await queueEvaluator({ url, queue, search: searchId, evaluator: name, connectTimeoutMs });
  try {
    const result = await search({ ...rest, evaluator, ...(checkpoint ? { checkpoint: fileCheckpoint(checkpoint) } : {}) });
    return { ...result, records: await evaluator.history(result.trials.length) };
  } finally {
    await evaluator.close();
  }
}
