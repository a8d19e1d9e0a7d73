import { RsError } from '@rs/core';
import { randomArchitecture, type SearchSpace } from './space';
import type { Strategy } from './strategy';

/** Options of {@link asha}. */
export interface AshaOptions {
  /** Fidelity (e.g. epochs) of the lowest rung, r. Default 1. */
  minFidelity?: number;
  /** Fidelity of the highest rung, R (rungs are r, r*eta, r*eta^2, ... up to R). Default 9. */
  maxFidelity?: number;
  /** Reduction factor eta: the top 1/eta of a rung is promoted to the next. Default 3. */
  reduction?: number;
}

interface RungEntry {
  arch: number[];
  validation: number;
  promoted: boolean;
}

/**
 * Asynchronous successive halving (ASHA, Li et al. 2018, "A System for Massively Parallel
 * Hyperparameter Tuning"). Each proposal either promotes a configuration to the next rung or,
 * when none can be, samples a new one at the lowest fidelity: scanning the rungs from the second
 * highest down, the first configuration that is in the top floor(n/eta) of its rung's n results
 * and not yet promoted goes up one rung (eta times the fidelity). Nothing waits for a rung to fill,
 * so every free worker always gets a job. Proposals carry their fidelity (`proposeTrial`), which
 * the runner passes to the evaluator (`trainingEvaluator` trains that many epochs). The search's
 * runner observes trials in proposal order, so the same seed gives the same trajectory at any
 * number of workers with the same `parallel` and `lookahead`. A promoted configuration is trained
 * again from scratch at the higher fidelity (no weights are carried), so its cost counts in full.
 *
 * @example
 * const result = await search({ space: mnistMlpSpace(), strategy: 'asha', strategyOptions: { minFidelity: 1, maxFidelity: 9, reduction: 3 },
 *   evaluator, budget: { fidelity: 90 }, seed: 0 });
 */
export function asha(space: SearchSpace, options: AshaOptions = {}): Strategy {
  const min = options.minFidelity ?? 1;
  const max = options.maxFidelity ?? 9;
  const eta = options.reduction ?? 3;
  if (!(typeof min === 'number' && min > 0 && Number.isFinite(min))) throw new RsError('INVALID_ARGUMENT', `asha: minFidelity must be a positive number, got ${String(min)}.`);
  if (!(typeof max === 'number' && max >= min && Number.isFinite(max))) throw new RsError('INVALID_ARGUMENT', `asha: maxFidelity must be a number >= minFidelity (${min}), got ${String(max)}.`);
  if (!(typeof eta === 'number' && eta >= 2 && Number.isFinite(eta))) throw new RsError('INVALID_ARGUMENT', `asha: reduction must be a number >= 2, got ${String(eta)}.`);
  const fidelities: number[] = [];
  for (let f = min; f <= max * (1 + 1e-9); f *= eta) fidelities.push(Number(f.toPrecision(12)));
  let rungs: RungEntry[][] = fidelities.map(() => []);
  const proposeTrial: NonNullable<Strategy['proposeTrial']> = (rng) => {
    for (let k = fidelities.length - 2; k >= 0; k--) {
      const rung = rungs[k];
      const quota = Math.floor(rung.length / eta);
      if (quota === 0) continue;
      // Stable ranking: higher validation first, earlier result first among equals.
      const ranked = rung.map((entry, i) => ({ entry, i })).sort((a, b) => b.entry.validation - a.entry.validation || a.i - b.i);
      const candidate = ranked.slice(0, quota).find(({ entry }) => !entry.promoted);
      if (candidate) {
        candidate.entry.promoted = true;
        return { arch: [...candidate.entry.arch], fidelity: fidelities[k + 1] };
      }
    }
    return { arch: randomArchitecture(space, rng), fidelity: fidelities[0] };
  };
  return {
    name: 'asha',
    proposeTrial,
    propose: (rng) => proposeTrial(rng).arch,
    observe(trial) {
      const k = fidelities.indexOf(trial.fidelity ?? fidelities[0]);
      if (k < 0) throw new RsError('INVALID_ARGUMENT', `asha: a trial of fidelity ${String(trial.fidelity)} is not on a rung (${fidelities.join(', ')}).`);
      rungs[k].push({ arch: [...trial.arch], validation: trial.validation, promoted: false });
    },
    state: () => ({ fidelities, rungs }),
    restore(state) {
      const s = state as { rungs: RungEntry[][] };
      rungs = s.rungs.map((rung) => rung.map((e) => ({ arch: [...e.arch], validation: e.validation, promoted: e.promoted })));
    },
  };
}
