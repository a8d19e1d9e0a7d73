import { RsError, type SeededRng } from '@rs/core';
import { mutateArchitecture, randomArchitecture, type Architecture, type SearchSpace } from './space';
import { asha, hyperband, type AshaOptions } from './asha';

/** One evaluated architecture. */
export interface Trial {
  arch: number[];
  /** The space's text form of `arch`. */
  encoded: string;
  /** The search signal (higher is better), e.g. validation accuracy. */
  validation: number;
  /** Reported, never optimized (e.g. test accuracy), where the evaluator knows it. */
  test?: number;
  /** Cost of the evaluation in seconds (simulated where the evaluator knows it, else measured). */
  cost: number;
  /** The training budget it was evaluated at (multi-fidelity strategies such as ASHA). */
  fidelity?: number;
  /** Why the evaluation failed (`search({ failures: 'record' })`); validation is then NaN. */
  error?: string;
}

/**
 * A search strategy in ask/tell form: `propose` the next architecture, `observe` its result.
 * Proposals may run ahead of observations (parallel evaluation). Strategies draw randomness only
 * from the `rng` they are given and keep JSON state, so a checkpointed search resumes exactly.
 */
export interface Strategy {
  readonly name: string;
  propose(rng: SeededRng): number[];
  /**
   * Multi-fidelity strategies (ASHA) propose an architecture with a budget; the runner calls this
   * instead of `propose` when it exists, and passes the fidelity to the evaluator.
   */
  proposeTrial?(rng: SeededRng): { arch: number[]; fidelity?: number };
  observe(trial: Trial): void;
  /** JSON-serializable state, for checkpoints. */
  state(): unknown;
  /** Restores a state returned by `state()`. */
  restore(state: unknown): void;
}

/** Random search: every proposal is uniform over the space. */
export function randomSearch(space: SearchSpace): Strategy {
  return {
    name: 'random',
    propose: (rng) => randomArchitecture(space, rng),
    observe: () => undefined,
    state: () => ({}),
    restore: () => undefined,
  };
}

/** Options of {@link regularizedEvolution}. */
export interface EvolutionOptions {
  /** Population size P. Default 10 (the NAS-Bench-201 scripts' setting). */
  population?: number;
  /** Tournament sample size S. Default 3 (idem). */
  sampleSize?: number;
}

/**
 * Regularized (aging) evolution, Real et al. 2019: the first P proposals are random; then S
 * individuals are sampled from the population, the best is mutated (one choice point changed),
 * and each observed child joins the population while the oldest member dies.
 */
export function regularizedEvolution(space: SearchSpace, options: EvolutionOptions = {}): Strategy {
  const population = options.population ?? 10;
  const sampleSize = options.sampleSize ?? 3;
  if (!Number.isInteger(population) || population < 1) throw new RsError('INVALID_ARGUMENT', `evolution: population must be a positive integer, got ${String(population)}.`);
  if (!Number.isInteger(sampleSize) || sampleSize < 1 || sampleSize > population) {
    throw new RsError('INVALID_ARGUMENT', `evolution: sampleSize must be an integer in [1, population = ${population}], got ${String(sampleSize)}.`);
  }
  let members: Array<{ arch: number[]; validation: number }> = [];
  let proposed = 0;
  return {
    name: 'evolution',
    propose(rng) {
      proposed += 1;
      if (proposed <= population || members.length === 0) return randomArchitecture(space, rng);
      let parent = members[rng.int(members.length)];
      for (let i = 1; i < sampleSize; i++) {
        const candidate = members[rng.int(members.length)];
        if (candidate.validation > parent.validation) parent = candidate;
      }
      return mutateArchitecture(space, parent.arch, rng);
    },
    observe(trial) {
      members.push({ arch: [...trial.arch], validation: trial.validation });
      if (members.length > population) members.shift();
    },
    state: () => ({ members, proposed }),
    restore(state) {
      const s = state as { members: typeof members; proposed: number };
      members = s.members.map((m) => ({ arch: [...m.arch], validation: m.validation }));
      proposed = s.proposed;
    },
  };
}

/** Options of {@link reinforce}. */
export interface ReinforceOptions {
  /** Adam learning rate of the policy logits. Default 0.001 (the NAS-Bench-201 scripts' setting). */
  learningRate?: number;
  /** Momentum of the moving-average reward baseline. Default 0.9. */
  baselineMomentum?: number;
  /** Reward = validation / rewardScale. Default 100 (accuracies in %). */
  rewardScale?: number;
}

/**
 * REINFORCE (Williams 1992) with a moving-average baseline, as used for NAS by Zoph & Le 2017 and
 * in NAS-Bench-201: one softmax per choice point; after each observation the logits take an Adam
 * step along (reward - baseline) * grad log p(arch).
 */
export function reinforce(space: SearchSpace, options: ReinforceOptions = {}): Strategy {
  const lr = options.learningRate ?? 0.001;
  const momentum = options.baselineMomentum ?? 0.9;
  const scale = options.rewardScale ?? 100;
  if (!(lr > 0)) throw new RsError('INVALID_ARGUMENT', `reinforce: learningRate must be > 0, got ${String(lr)}.`);
  if (!(momentum >= 0 && momentum < 1)) throw new RsError('INVALID_ARGUMENT', `reinforce: baselineMomentum must be in [0, 1), got ${String(momentum)}.`);
  let logits = space.choices.map((c) => new Array<number>(c.options.length).fill(0));
  let m = logits.map((row) => row.map(() => 0));
  let v = logits.map((row) => row.map(() => 0));
  let steps = 0;
  let baseline: number | null = null;
  const softmax = (row: number[]): number[] => {
    const max = Math.max(...row);
    const e = row.map((x) => Math.exp(x - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / sum);
  };
  return {
    name: 'reinforce',
    propose(rng) {
      return logits.map((row) => {
        const p = softmax(row);
        const u = rng.next();
        let acc = 0;
        for (let i = 0; i < p.length; i++) {
          acc += p[i];
          if (u < acc) return i;
        }
        return p.length - 1;
      });
    },
    observe(trial) {
      const reward = trial.validation / scale;
      if (baseline === null) baseline = reward;
      const advantage = reward - baseline;
      baseline = momentum * baseline + (1 - momentum) * reward;
      steps += 1;
      const [b1, b2, eps] = [0.9, 0.999, 1e-8];
      logits = logits.map((row, c) => {
        const p = softmax(row);
        return row.map((value, i) => {
          // Gradient ascent on advantage * log p(a): d/dlogit_i = advantage * (1[i = a] - p_i).
          const g = -advantage * ((trial.arch[c] === i ? 1 : 0) - p[i]);
          m[c][i] = b1 * m[c][i] + (1 - b1) * g;
          v[c][i] = b2 * v[c][i] + (1 - b2) * g * g;
          const mHat = m[c][i] / (1 - b1 ** steps);
          const vHat = v[c][i] / (1 - b2 ** steps);
          return value - (lr * mHat) / (Math.sqrt(vHat) + eps);
        });
      });
    },
    state: () => ({ logits, m, v, steps, baseline }),
    restore(state) {
      const s = state as { logits: number[][]; m: number[][]; v: number[][]; steps: number; baseline: number | null };
      logits = s.logits.map((r) => [...r]);
      m = s.m.map((r) => [...r]);
      v = s.v.map((r) => [...r]);
      steps = s.steps;
      baseline = s.baseline;
    },
  };
}

/** Names of the built-in ask/tell strategies (ASHA is multi-fidelity; DARTS is a separate, gradient-based procedure). */
export type StrategyName = 'random' | 'evolution' | 'reinforce' | 'asha' | 'hyperband';

const factories: Record<StrategyName, (space: SearchSpace, options: Record<string, unknown>) => Strategy> = {
  random: (space) => randomSearch(space),
  evolution: (space, options) => regularizedEvolution(space, options as EvolutionOptions),
  reinforce: (space, options) => reinforce(space, options as ReinforceOptions),
  asha: (space, options) => asha(space, options as AshaOptions),
  hyperband: (space, options) => hyperband(space, options as AshaOptions),
};

/**
 * A built-in strategy by name; an unknown name raises UNKNOWN_STRATEGY.
 *
 * @example
 * const strategy = createStrategy('evolution', nb201Space(), { population: 10, sampleSize: 3 });
 */
export function createStrategy(name: string, space: SearchSpace, options: Record<string, unknown> = {}): Strategy {
  const factory = Object.prototype.hasOwnProperty.call(factories, name) ? factories[name as StrategyName] : undefined;
  if (!factory) throw new RsError('UNKNOWN_STRATEGY', `unknown search strategy '${name}'; built in: ${Object.keys(factories).join(', ')} (DARTS: use darts()).`, { strategy: name });
  return factory(space, options);
}

export type { Architecture };
