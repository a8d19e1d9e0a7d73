/**
 * @rs/nas-queue: architecture search beyond one machine. Trials of an `@rs/nas` search run as
 * jobs of a BullMQ queue on Redis; workers are separate processes (`rs-nas-worker`, or
 * `startWorker`) on any machine that reaches the Redis server. The controller observes results in
 * trial order, so a search is reproducible and resumable (checkpoint file + job ids).
 */
export { checkRedis, redisOptions, DEFAULT_QUEUE } from './connection';
export { queueEvaluator, queueSearch } from './controller';
export type { QueueEvaluator, QueueEvaluatorOptions, QueueSearchOptions, QueueTrialRecord, TrialJob, TrialOutcome } from './controller';
export { startWorker } from './worker';
export type { QueueWorker, QueueWorkerOptions, EvaluatorModule } from './worker';
