import { RsError, type Callback, type Model } from '@rs/core';
import { pruneWeights, type PruneWeightsOptions } from './prune';

/** TF-MOT's PolynomialDecay parameters (Zhu & Gupta 2017). */
export interface PolynomialOptions {
  initialSparsity: number;
  finalSparsity: number;
  beginStep: number;
  endStep: number;
  /** Prune every `frequency` steps (default 100). */
  frequency?: number;
  /** Default 3. */
  power?: number;
}

/**
 * The gradual schedule s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^power, applied at
 * t0, t0 + f, ... up to t1 (and at t1); `null` on steps where nothing is pruned.
 *
 * @example
 * const at = polynomialSparsity({ initialSparsity: 0, finalSparsity: 0.9, beginStep: 0, endStep: 1000 });
 * at(500); // 0.7875
 */
export function polynomialSparsity(options: PolynomialOptions): (step: number) => number | null {
  const { initialSparsity: si, finalSparsity: sf, beginStep: t0, endStep: t1 } = options;
  const frequency = options.frequency ?? 100;
  const power = options.power ?? 3;
  for (const [name, v] of [['initialSparsity', si], ['finalSparsity', sf]] as const) {
    if (!(v >= 0 && v < 1)) throw new RsError('INVALID_ARGUMENT', `${name} must be in [0, 1), got ${String(v)}.`);
  }
  if (!(Number.isInteger(t0) && Number.isInteger(t1) && t1 > t0 && t0 >= 0)) throw new RsError('INVALID_ARGUMENT', `need integer steps 0 <= beginStep < endStep, got ${t0}, ${t1}.`);
  if (!(Number.isInteger(frequency) && frequency > 0)) throw new RsError('INVALID_ARGUMENT', `frequency must be a positive integer, got ${frequency}.`);
  return (step) => {
    if (step < t0 || step > t1) return null;
    if ((step - t0) % frequency !== 0 && step !== t1) return null;
    const progress = Math.min(1, (step - t0) / (t1 - t0));
    return sf + (si - sf) * (1 - progress) ** power;
  };
}

/**
 * A `fit` callback that prunes to the polynomial schedule during training (masks, kept at zero
 * by training). `step` counts optimizer steps from 1.
 *
 * @example
 * await fit(model, data, { loss, epochs: 10, callbacks: [gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 0.9, beginStep: 100, endStep: 1000 } })] });
 */
export function gradualPruning(options: { schedule: PolynomialOptions } & Omit<PruneWeightsOptions, 'sparsity'>): Callback & { history: { step: number; sparsity: number }[] } {
  const at = polynomialSparsity(options.schedule);
  const history: { step: number; sparsity: number }[] = [];
  return {
    history,
    onStepEnd(info) {
      const target = at(info.step);
      if (target === null) return;
      pruneWeights(info.model, { ...options, sparsity: target, reason: options.reason ?? `gradual polynomial schedule, step ${info.step}` });
      history.push({ step: info.step, sparsity: target });
    },
  };
}

/**
 * Sparsity after each of `rounds` rounds of iterative pruning that removes the same fraction of
 * the remaining weights each round, ending at `finalSparsity`: 1 - (1 - s)^(r / R).
 *
 * @example
 * iterativeSchedule(0.9, 3); // [0.535, 0.785, 0.9]
 */
export function iterativeSchedule(finalSparsity: number, rounds: number): number[] {
  if (!(finalSparsity >= 0 && finalSparsity < 1)) throw new RsError('INVALID_ARGUMENT', `finalSparsity must be in [0, 1), got ${finalSparsity}.`);
  if (!(Number.isInteger(rounds) && rounds > 0)) throw new RsError('INVALID_ARGUMENT', `rounds must be a positive integer, got ${rounds}.`);
  return Array.from({ length: rounds }, (_, r) => 1 - (1 - finalSparsity) ** ((r + 1) / rounds));
}

/** Options of `pruneIteratively`: `pruneWeights` options plus the final targets, rounds and retraining. */
export interface IterativeOptions extends Omit<PruneWeightsOptions, 'sparsity' | 'sparsityPerParam'> {
  /** Sparsity after the last round, in [0, 1). */
  finalSparsity: number;
  /** Final sparsity per parameter (layer scope), e.g. a lower one for the output layer. */
  finalSparsityPerParam?: Record<string, number>;
  rounds: number;
  /** Retrains after each round's pruning (pruned weights stay at zero). */
  retrain: (model: Model, round: number) => Promise<void> | void;
}

/** One round of `pruneIteratively`. */
export interface IterativeRound {
  round: number;
  /** Target of the round (the same fraction of the remaining weights each round). */
  target: number;
  /** Fraction of the pruned parameters' weights that are zero after the round. */
  sparsity: Record<string, number>;
}

/**
 * Iterative pruning with retraining (Han et al. 2015): `rounds` times, prune to the next target
 * of `iterativeSchedule(finalSparsity, rounds)`, then `retrain`. Each round is one journaled edit.
 *
 * @example
 * await pruneIteratively(model, { finalSparsity: 0.9, rounds: 3, scope: 'layer', retrain: (m) => fit(m, data, options) });
 */
export async function pruneIteratively(model: Model, options: IterativeOptions): Promise<IterativeRound[]> {
  const targets = iterativeSchedule(options.finalSparsity, options.rounds);
  const perParam = Object.entries(options.finalSparsityPerParam ?? {}).map(([key, value]) => [key, iterativeSchedule(value, options.rounds)] as const);
  const { finalSparsity: _final, finalSparsityPerParam: _perParam, rounds: _rounds, retrain, ...rest } = options;
  const history: IterativeRound[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const target = targets[round];
    const { sparsity } = pruneWeights(model, {
      ...rest,
      sparsity: target,
      sparsityPerParam: perParam.length > 0 ? Object.fromEntries(perParam.map(([key, values]) => [key, values[round]])) : undefined,
      reason: options.reason ?? `iterative pruning, round ${round + 1} of ${options.rounds}: ${(100 * target).toFixed(1)}% sparsity`,
    });
    await retrain(model, round);
    history.push({ round, target, sparsity });
  }
  return history;
}
