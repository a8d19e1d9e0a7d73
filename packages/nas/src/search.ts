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

/** Evaluates architectures (a table lookup, real training, or a pool of workers doing either). */
export interface Evaluator {
  evaluate(arch: number[], encoded: string): EvaluationResult | Promise<EvaluationResult>;
}

/** A search budget: evaluations, seconds (simulated costs where known), or both (first reached stops). */
export interface Budget {
  evaluations?: number;
  seconds?: number;
}

/** Where a search keeps its state between rounds, so a killed search resumes. */
export interface CheckpointStore {
  load(): SearchCheckpoint | undefined | Promise<SearchCheckpoint | undefined>;
  save(checkpoint: SearchCheckpoint): void | Promise<void>;
}

/** The saved state of a search (JSON). */
export interface SearchCheckpoint {
  version: 1;
  space: string;
  strategy: string;
  seed: number;
  rng: number[];
  strategyState: unknown;
  trials: Trial[];
  seconds: number;
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
  /** Architectures proposed and evaluated concurrently per round. Default 1. */
  parallel?: number;
  /** Saved after every round; if it holds a state, the search resumes from it. */
  checkpoint?: CheckpointStore;
  /** Called after each observed trial. */
  onTrial?: (trial: Trial, index: number) => void;
}

/** What {@link search} returns. */
export interface SearchResult {
  strategy: string;
  seed: number;
  /** Best trial by validation (ties: the earliest). */
  best: Trial;
  trials: Trial[];
  anytime: AnytimePoint[];
  seconds: number;
  /** Whether the search resumed from a checkpoint. */
  resumed: boolean;
}

function checkBudget(budget: Budget): void {
  if (budget === null || typeof budget !== 'object') throw new RsError('INVALID_BUDGET', `budget must be an object { evaluations?, seconds? }, got ${String(budget)}.`);
  const { evaluations, seconds } = budget;
  if (evaluations === undefined && seconds === undefined) throw new RsError('INVALID_BUDGET', 'budget needs evaluations and/or seconds.');
  if (evaluations !== undefined && (!Number.isInteger(evaluations) || evaluations <= 0)) {
    throw new RsError('INVALID_BUDGET', `budget.evaluations must be a positive integer, got ${String(evaluations)}.`, { evaluations });
  }
  if (seconds !== undefined && !(typeof seconds === 'number' && seconds > 0 && Number.isFinite(seconds))) {
    throw new RsError('INVALID_BUDGET', `budget.seconds must be a positive number, got ${String(seconds)}.`, { seconds });
  }
}

/**
 * Runs a search: the strategy proposes, the evaluator scores, until the budget is spent. Rounds
 * of `parallel` proposals are evaluated concurrently and observed in proposal order, and the
 * state is checkpointed after each round, so a resumed search continues exactly where the
 * killed one left off (same seed, same result).
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
  const strategy = typeof options.strategy === 'string' ? createStrategy(options.strategy, space, options.strategyOptions) : options.strategy;
  let rng = createRng(seed);
  let trials: Trial[] = [];
  let seconds = 0;
  let resumed = false;
  const saved = options.checkpoint ? await options.checkpoint.load() : undefined;
  if (saved) {
    if (saved.version !== 1 || saved.space !== space.name || saved.strategy !== strategy.name || saved.seed !== seed) {
      throw new RsError(
        'INVALID_ARGUMENT',
        `the checkpoint is of another search (space '${saved.space}', strategy '${saved.strategy}', seed ${saved.seed}); this one is space '${space.name}', strategy '${strategy.name}', seed ${seed}.`,
      );
    }
    rng = createRng(seed, saved.rng);
    strategy.restore(saved.strategyState);
    trials = saved.trials;
    seconds = saved.seconds;
    resumed = true;
  }
  const spent = (): boolean => (budget.evaluations !== undefined && trials.length >= budget.evaluations) || (budget.seconds !== undefined && seconds >= budget.seconds);
  while (!spent()) {
    const count = Math.min(parallel, budget.evaluations !== undefined ? budget.evaluations - trials.length : parallel);
    const proposals: Architecture[] = [];
    for (let i = 0; i < count; i++) {
      const arch = strategy.propose(rng);
      checkArchitecture(space, arch);
      proposals.push(arch);
    }
    const results = await Promise.all(
      proposals.map(async (arch) => {
        const encoded = space.encode(arch);
        const started = performance.now();
        const result = await evaluator.evaluate([...arch], encoded);
        if (typeof result?.validation !== 'number' || !Number.isFinite(result.validation)) {
          throw new RsError('INVALID_ARGUMENT', `the evaluator returned no finite validation score for ${encoded}.`, { encoded });
        }
        const trial: Trial = { arch: [...arch], encoded, validation: result.validation, cost: result.cost ?? (performance.now() - started) / 1000 };
        if (result.test !== undefined) trial.test = result.test;
        return trial;
      }),
    );
    for (const trial of results) {
      strategy.observe(trial);
      trials.push(trial);
      seconds += trial.cost;
      options.onTrial?.(trial, trials.length - 1);
    }
    if (options.checkpoint) {
      await options.checkpoint.save({
        version: 1,
        space: space.name,
        strategy: strategy.name,
        seed,
        rng: rng.state(),
        strategyState: JSON.parse(JSON.stringify(strategy.state())) as unknown,
        trials,
        seconds,
      });
    }
  }
  return { strategy: strategy.name, seed, best: bestTrial(trials), trials, anytime: anytimeCurve(trials), seconds, resumed };
}

function bestTrial(trials: Trial[]): Trial {
  let best = trials[0];
  for (const t of trials) if (t.validation > best.validation) best = t;
  return best;
}

/** Best-so-far (by validation) after each trial, with elapsed evaluation seconds. */
export function anytimeCurve(trials: readonly Trial[]): AnytimePoint[] {
  const curve: AnytimePoint[] = [];
  let best: Trial | undefined;
  let seconds = 0;
  trials.forEach((t, i) => {
    seconds += t.cost;
    if (!best || t.validation > best.validation) best = t;
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
