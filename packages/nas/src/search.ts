import { RsError, createRng } from '@rs/core';
import { checkArchitecture, type Architecture, type SearchSpace } from './space';
import { createStrategy, type Strategy, type Trial } from './strategy';

/** The result of evaluating one architecture. */
export interface EvaluationResult {
  /** The search signal, higher is better (e.g. validation accuracy in %). */
  validation: number;
  /** Reported only (e.g. test accuracy). */
  test?: number;
  /** Cost in seconds where the evaluator knows it (simulated); else the measured wall time is used. */
  cost?: number;
}

/** What the runner tells an evaluator about the trial besides the architecture. */
export interface EvaluationContext {
  /** The trial's index in proposal order (stable across a resume: a queue uses it as the job id). */
  trial: number;
  /** The training budget of a multi-fidelity strategy (e.g. epochs for ASHA); absent otherwise. */
  fidelity?: number;
}

/** Evaluates architectures (a table lookup, real training, or a pool of workers doing either). */
export interface Evaluator {
  evaluate(arch: number[], encoded: string, context?: EvaluationContext): EvaluationResult | Promise<EvaluationResult>;
}

/**
 * A search budget: evaluations, seconds (simulated costs where known), total fidelity (e.g. the
 * epochs of all trials together; a trial without a fidelity counts 1), or several (first reached
 * stops). No proposal is made once the committed (observed and pending) fidelity reaches the budget.
 */
export interface Budget {
  evaluations?: number;
  seconds?: number;
  fidelity?: number;
}

/** Where a search keeps its state between rounds, so a killed search resumes. */
export interface CheckpointStore {
  load(): SearchCheckpoint | undefined | Promise<SearchCheckpoint | undefined>;
  save(checkpoint: SearchCheckpoint): void | Promise<void>;
}

/** The saved state of a search (JSON). */
export interface SearchCheckpoint {
  version: 2;
  space: string;
  strategy: string;
  seed: number;
  rng: number[];
  strategyState: unknown;
  trials: Trial[];
  seconds: number;
  /** Proposed but not yet observed, in proposal order (evaluated first on resume). */
  pending: Architecture[];
  /** The fidelity of each pending proposal (multi-fidelity strategies only). */
  pendingFidelity?: Array<number | null>;
}

/** One point of the anytime curve: the best (by validation) after some budget. */
export interface AnytimePoint {
  evaluations: number;
  seconds: number;
  bestValidation: number;
  /** Test accuracy of the architecture that is best by validation. */
  bestTest?: number;
}

/** Options of {@link search}. */
export interface SearchOptions {
  space: SearchSpace;
  /** A strategy, or a built-in name ('random', 'evolution', 'reinforce'). */
  strategy: Strategy | string;
  strategyOptions?: Record<string, unknown>;
  evaluator: Evaluator;
  budget: Budget;
  seed?: number;
  /** Evaluations running at once. Default 1. */
  parallel?: number;
  /**
   * Proposals made ahead of the running ones, so that an evaluator slot that frees up starts
   * the next trial at once instead of waiting for a slower one. Trials are observed in proposal
   * order, and proposal k is made after observing trials 0..k-(parallel+lookahead)-1, so the
   * result does not depend on timing. Default: `parallel` when `parallel` > 1, else 0 (a serial
   * search observes each trial before the next proposal).
   */
  lookahead?: number;
  /** Saved after every observed trial; if it holds a state, the search resumes from it. */
  checkpoint?: CheckpointStore;
  /** Called after each observed trial. */
  onTrial?: (trial: Trial, index: number) => void;
  /**
   * What an evaluation that throws does: 'stop' (default) ends the search with the error;
   * 'record' keeps the trial with its `error` message and no score (validation NaN), which the
   * strategy does not observe and which is never the best, and the search goes on.
   */
  failures?: 'stop' | 'record';
}

/** What {@link search} returns. */
export interface SearchResult {
  strategy: string;
  seed: number;
  /** Best trial by validation (ties: the earliest; failed trials only when every trial failed). */
  best: Trial;
  trials: Trial[];
  anytime: AnytimePoint[];
  seconds: number;
  /** Whether the search resumed from a checkpoint. */
  resumed: boolean;
}

function checkBudget(budget: Budget): void {
  if (budget === null || typeof budget !== 'object') throw new RsError('INVALID_BUDGET', `budget must be an object { evaluations?, seconds? }, got ${String(budget)}.`);
  const { evaluations, seconds, fidelity } = budget;
  if (evaluations === undefined && seconds === undefined && fidelity === undefined) throw new RsError('INVALID_BUDGET', 'budget needs evaluations, seconds and/or fidelity.');
  if (evaluations !== undefined && (!Number.isInteger(evaluations) || evaluations <= 0)) {
    throw new RsError('INVALID_BUDGET', `budget.evaluations must be a positive integer, got ${String(evaluations)}.`, { evaluations });
  }
  if (seconds !== undefined && !(typeof seconds === 'number' && seconds > 0 && Number.isFinite(seconds))) {
    throw new RsError('INVALID_BUDGET', `budget.seconds must be a positive number, got ${String(seconds)}.`, { seconds });
  }
  if (fidelity !== undefined && !(typeof fidelity === 'number' && fidelity > 0 && Number.isFinite(fidelity))) {
    throw new RsError('INVALID_BUDGET', `budget.fidelity must be a positive number, got ${String(fidelity)}.`, { fidelity });
  }
}

/**
 * Runs a search: the strategy proposes, the evaluator scores, until the budget is spent. Up to
 * `parallel` evaluations run at once and up to `lookahead` more proposals wait for a free slot;
 * trials are observed in proposal order and the state is checkpointed after each one, so a
 * resumed search continues exactly where the killed one left off (same seed, same result, at any
 * `parallel`).
 *
 * @example
 * const { rows } = loadNasBench201();            // @rs/datasets
 * const result = await search({ space: nb201Space(), strategy: 'evolution',
 *   evaluator: tableEvaluator(nb201Space(), rows), budget: { evaluations: 100 }, seed: 1 });
 * result.best.encoded; result.best.test;
 */
export async function search(options: SearchOptions): Promise<SearchResult> {
  const { space, evaluator, budget } = options;
  checkBudget(budget);
  const seed = options.seed ?? 0;
  const parallel = options.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw new RsError('INVALID_ARGUMENT', `parallel must be a positive integer, got ${String(parallel)}.`);
  const lookahead = options.lookahead ?? (parallel > 1 ? parallel : 0);
  if (!Number.isInteger(lookahead) || lookahead < 0) throw new RsError('INVALID_ARGUMENT', `lookahead must be a non-negative integer, got ${String(options.lookahead)}.`);
  const strategy = typeof options.strategy === 'string' ? createStrategy(options.strategy, space, options.strategyOptions) : options.strategy;
  let rng = createRng(seed);
  let trials: Trial[] = [];
  let seconds = 0;
  let resumed = false;
  // Proposed, unobserved trials in proposal order; each starts when one of `parallel` slots is free.
  interface Slot {
    arch: Architecture;
    index: number;
    fidelity?: number;
    result?: Promise<Trial>;
  }
  const queue: Slot[] = [];
  const saved = options.checkpoint ? await options.checkpoint.load() : undefined;
  if (saved) {
    if ((saved.version as number) !== 2) {
      throw new RsError('INVALID_ARGUMENT', `the checkpoint has format version ${String(saved.version)}; this version of @rs/nas reads version 2 (start the search again without it).`);
    }
    if (saved.space !== space.name || saved.strategy !== strategy.name || saved.seed !== seed) {
      throw new RsError(
        'INVALID_ARGUMENT',
        `the checkpoint is of another search (space '${saved.space}', strategy '${saved.strategy}', seed ${saved.seed}); this one is space '${space.name}', strategy '${strategy.name}', seed ${seed}.`,
      );
    }
    rng = createRng(seed, saved.rng);
    strategy.restore(saved.strategyState);
    // JSON turns a failed trial's NaN validation into null.
    trials = saved.trials.map((t) => (t.error !== undefined ? { ...t, validation: Number.NaN } : t));
    seconds = saved.seconds;
    saved.pending.forEach((arch, i) => {
      const fidelity = saved.pendingFidelity?.[i];
      queue.push(fidelity === undefined || fidelity === null ? { arch, index: trials.length + i } : { arch, index: trials.length + i, fidelity });
    });
    resumed = true;
  }
  const committed = (): number => [...trials, ...queue].reduce((sum, t) => sum + (t.fidelity ?? 1), 0);
  const spent = (): boolean =>
    (budget.evaluations !== undefined && trials.length >= budget.evaluations) ||
    (budget.seconds !== undefined && seconds >= budget.seconds) ||
    (budget.fidelity !== undefined && committed() >= budget.fidelity);

  let running = 0;
  let fail: (error: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  const evaluateOne = async (slot: Slot): Promise<Trial> => {
    const started = performance.now();
    try {
      return await evaluateSlot(slot, started);
    } catch (error) {
      if (options.failures !== 'record') throw error;
      const trial: Trial = { arch: [...slot.arch], encoded: space.encode(slot.arch), validation: Number.NaN, cost: (performance.now() - started) / 1000, error: (error as Error)?.message ?? String(error) };
      if (slot.fidelity !== undefined) trial.fidelity = slot.fidelity;
      return trial;
    }
  };
  const evaluateSlot = async ({ arch, index, fidelity }: Slot, started: number): Promise<Trial> => {
    const encoded = space.encode(arch);
    const result = await evaluator.evaluate([...arch], encoded, fidelity === undefined ? { trial: index } : { trial: index, fidelity });
    if (typeof result?.validation !== 'number' || !Number.isFinite(result.validation)) {
      throw new RsError('INVALID_ARGUMENT', `the evaluator returned no finite validation score for ${encoded}.`, { encoded });
    }
    const trial: Trial = { arch: [...arch], encoded, validation: result.validation, cost: result.cost ?? (performance.now() - started) / 1000 };
    if (result.test !== undefined) trial.test = result.test;
    if (fidelity !== undefined) trial.fidelity = fidelity;
    return trial;
  };
  const startFree = (): void => {
    for (const slot of queue) {
      if (running >= parallel) return;
      if (slot.result) continue;
      running += 1;
      slot.result = evaluateOne(slot).finally(() => {
        running -= 1;
        startFree();
      });
      slot.result.catch(fail);
    }
  };
  const propose = (): void => {
    while (!spent() && queue.length < parallel + lookahead && (budget.evaluations === undefined || trials.length + queue.length < budget.evaluations)) {
      const index = trials.length + queue.length;
      if (strategy.proposeTrial) {
        const { arch, fidelity } = strategy.proposeTrial(rng);
        checkArchitecture(space, arch);
        queue.push(fidelity === undefined ? { arch, index } : { arch, index, fidelity });
      } else {
        const arch = strategy.propose(rng);
        checkArchitecture(space, arch);
        queue.push({ arch, index });
      }
    }
  };
  const save = async (): Promise<void> => {
    if (!options.checkpoint) return;
    await options.checkpoint.save({
      version: 2,
      space: space.name,
      strategy: strategy.name,
      seed,
      rng: rng.state(),
      strategyState: JSON.parse(JSON.stringify(strategy.state())) as unknown,
      trials,
      seconds,
      pending: queue.map((slot) => [...slot.arch]),
      ...(strategy.proposeTrial ? { pendingFidelity: queue.map((slot) => slot.fidelity ?? null) } : {}),
    });
  };

  propose();
  startFree();
  while (queue.length > 0) {
    const trial = await Promise.race([queue[0].result as Promise<Trial>, failed]);
    queue.shift();
    if (trial.error === undefined) strategy.observe(trial);
    trials.push(trial);
    seconds += trial.cost;
    options.onTrial?.(trial, trials.length - 1);
    propose();
    startFree();
    await save();
  }
  return { strategy: strategy.name, seed, best: bestTrial(trials), trials, anytime: anytimeCurve(trials), seconds, resumed };
}

function bestTrial(trials: Trial[]): Trial {
  let best = trials.find((t) => t.error === undefined) ?? trials[0];
  for (const t of trials) if (t.error === undefined && t.validation > best.validation) best = t;
  return best;
}

/** Best-so-far (by validation) after each trial, with elapsed evaluation seconds (from the first successful trial on). */
export function anytimeCurve(trials: readonly Trial[]): AnytimePoint[] {
  const curve: AnytimePoint[] = [];
  let best: Trial | undefined;
  let seconds = 0;
  trials.forEach((t, i) => {
    seconds += t.cost;
    if (t.error === undefined && (!best || t.validation > best.validation)) best = t;
    if (!best) return; // no successful trial yet: no point
    const point: AnytimePoint = { evaluations: i + 1, seconds, bestValidation: best.validation };
    if (best.test !== undefined) point.bestTest = best.test;
    curve.push(point);
  });
  return curve;
}

/** A checkpoint kept in memory (tests, or a caller that persists it elsewhere). */
export function memoryCheckpoint(): CheckpointStore & { current?: SearchCheckpoint } {
  const store: CheckpointStore & { current?: SearchCheckpoint } = {
    load: () => (store.current ? (JSON.parse(JSON.stringify(store.current)) as SearchCheckpoint) : undefined),
    save: (c) => {
      store.current = JSON.parse(JSON.stringify(c)) as SearchCheckpoint;
    },
  };
  return store;
}

/** A row of a tabular benchmark. */
export interface TableRow {
  arch: string;
  validAccuracy: number;
  testAccuracy?: number;
  /** Seconds to train this architecture, where the table knows it (used as the simulated cost). */
  trainSeconds?: number;
}

/**
 * An evaluator that looks architectures up in a table (NAS-Bench-201: `loadNasBench201().rows`
 * from @rs/datasets): validation = `validAccuracy` (the search signal), test = `testAccuracy`
 * (reported only). Table rows whose string the space cannot parse raise INVALID_ARCHITECTURE.
 */
export function tableEvaluator(space: SearchSpace, rows: readonly TableRow[]): Evaluator & { lookups: number } {
  const table = new Map<string, TableRow>();
  for (const row of rows) table.set(space.encode(space.decode(row.arch)), row);
  const evaluator = {
    lookups: 0,
    evaluate(_arch: number[], encoded: string): EvaluationResult {
      const row = table.get(encoded);
      if (!row) throw new RsError('INVALID_ARCHITECTURE', `'${encoded}' is not in the table (${table.size} rows).`, { encoded });
      evaluator.lookups += 1;
      const result: EvaluationResult = { validation: row.validAccuracy };
      if (row.trainSeconds !== undefined) result.cost = row.trainSeconds;
      if (row.testAccuracy !== undefined) result.test = row.testAccuracy;
      return result;
    },
  };
  return evaluator;
}
