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
  const fidelities = rungFidelities('asha', options);
  const eta = options.reduction ?? 3;
  let rungs: RungEntry[][] = fidelities.map(() => []);
  const proposeTrial: NonNullable<Strategy['proposeTrial']> = (rng) => promote(rungs, fidelities, eta) ?? { arch: randomArchitecture(space, rng), fidelity: fidelities[0] };
  return {
    name: 'asha',
    proposeTrial,
    propose: (rng) => proposeTrial(rng).arch,
    observe(trial) {
      rungs[rungOf('asha', fidelities, trial.fidelity)].push({ arch: [...trial.arch], validation: trial.validation, promoted: false });
    },
    state: () => ({ fidelities, rungs }),
    restore(state) {
      rungs = copyRungs((state as { rungs: RungEntry[][] }).rungs);
    },
  };
}

/**
 * Asynchronous Hyperband (Li et al. 2018, section 3.3): ASHA brackets with different minimum
 * fidelities, bracket s starting at r*eta^s (s = 0 stops early most aggressively, the last
 * bracket trains every configuration at R). New configurations go to the brackets in turn;
 * a promotion, when one is due in any bracket (checked from bracket 0 on), comes first. Same
 * options, fidelity passing and determinism as {@link asha}.
 *
 * @example
 * await search({ space: mnistMlpSpace(), strategy: 'hyperband', strategyOptions: { maxFidelity: 9 }, evaluator, budget: { fidelity: 200 } });
 */
export function hyperband(space: SearchSpace, options: AshaOptions = {}): Strategy {
  const all = rungFidelities('hyperband', options);
  const eta = options.reduction ?? 3;
  const brackets = all.map((_, s) => all.slice(s));
  let rungs: RungEntry[][][] = brackets.map((f) => f.map(() => []));
  let next = 0;
  // Proposals not yet observed, in proposal order: the runner observes in that order, so the first
  // pending entry with a trial's architecture and fidelity is that trial's (earlier ones failed).
  let pending: Array<{ encoded: string; fidelity: number; bracket: number }> = [];
  const proposeTrial: NonNullable<Strategy['proposeTrial']> = (rng) => {
    let bracket = brackets.findIndex((f, b) => promote(rungs[b], f, eta, true) !== undefined);
    let proposal = bracket >= 0 ? promote(rungs[bracket], brackets[bracket], eta) : undefined;
    if (!proposal) {
      bracket = next;
      next = (next + 1) % brackets.length;
      proposal = { arch: randomArchitecture(space, rng), fidelity: brackets[bracket][0] };
    }
    pending.push({ encoded: space.encode(proposal.arch), fidelity: proposal.fidelity, bracket });
    return proposal;
  };
  return {
    name: 'hyperband',
    proposeTrial,
    propose: (rng) => proposeTrial(rng).arch,
    observe(trial) {
      const at = pending.findIndex((p) => p.encoded === trial.encoded && p.fidelity === trial.fidelity);
      if (at < 0) throw new RsError('INVALID_ARGUMENT', `hyperband: observed ${trial.encoded} at fidelity ${String(trial.fidelity)}, which it did not propose.`);
      const { bracket } = pending[at];
      pending = pending.slice(at + 1);
      rungs[bracket][rungOf('hyperband', brackets[bracket], trial.fidelity)].push({ arch: [...trial.arch], validation: trial.validation, promoted: false });
    },
    state: () => ({ fidelities: all, rungs, next, pending }),
    restore(state) {
      const s = state as { rungs: RungEntry[][][]; next: number; pending: typeof pending };
      rungs = s.rungs.map(copyRungs);
      next = s.next;
      pending = s.pending.map((p) => ({ ...p }));
    },
  };
}

function rungFidelities(name: string, options: AshaOptions): number[] {
  const min = options.minFidelity ?? 1;
  const max = options.maxFidelity ?? 9;
  const eta = options.reduction ?? 3;
  if (!(typeof min === 'number' && min > 0 && Number.isFinite(min))) throw new RsError('INVALID_ARGUMENT', `${name}: minFidelity must be a positive number, got ${String(min)}.`);
  if (!(typeof max === 'number' && max >= min && Number.isFinite(max))) throw new RsError('INVALID_ARGUMENT', `${name}: maxFidelity must be a number >= minFidelity (${min}), got ${String(max)}.`);
  if (!(typeof eta === 'number' && eta >= 2 && Number.isFinite(eta))) throw new RsError('INVALID_ARGUMENT', `${name}: reduction must be a number >= 2, got ${String(eta)}.`);
  const fidelities: number[] = [];
  for (let f = min; f <= max * (1 + 1e-9); f *= eta) fidelities.push(Number(f.toPrecision(12)));
  return fidelities;
}

function rungOf(name: string, fidelities: number[], fidelity: number | undefined): number {
  const k = fidelities.indexOf(fidelity ?? fidelities[0]);
  if (k < 0) throw new RsError('INVALID_ARGUMENT', `${name}: a trial of fidelity ${String(fidelity)} is not on a rung (${fidelities.join(', ')}).`);
  return k;
}

/**
 * ASHA's promotion rule: scanning the rungs from the second highest down, the first
 * configuration in the top floor(n/eta) of its rung's n results that is not yet promoted goes up
 * one rung (marked promoted unless `peek`); undefined when none can be.
 */
function promote(rungs: RungEntry[][], fidelities: number[], eta: number, peek = false): { arch: number[]; fidelity: number } | undefined {
  for (let k = fidelities.length - 2; k >= 0; k--) {
    const rung = rungs[k];
    const quota = Math.floor(rung.length / eta);
    if (quota === 0) continue;
    // Stable ranking: higher validation first, earlier result first among equals.
    const ranked = rung.map((entry, i) => ({ entry, i })).sort((a, b) => b.entry.validation - a.entry.validation || a.i - b.i);
    const candidate = ranked.slice(0, quota).find(({ entry }) => !entry.promoted);
    if (candidate) {
      if (!peek) candidate.entry.promoted = true;
      return { arch: [...candidate.entry.arch], fidelity: fidelities[k + 1] };
    }
  }
  return undefined;
}

const copyRungs = (rungs: RungEntry[][]): RungEntry[][] => rungs.map((rung) => rung.map((e) => ({ arch: [...e.arch], validation: e.validation, promoted: e.promoted })));
