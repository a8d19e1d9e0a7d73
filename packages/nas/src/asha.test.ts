import { describe, expect, it } from 'vitest';
import { RsError } from '@rs/core';
import { asha, createStrategy, defineSpace, hyperband, memoryCheckpoint, search, type EvaluationContext, type Evaluator, type Trial } from './index';

// A synthetic multi-fidelity problem: the score grows with the fidelity and is ranked by the
// architecture's sum, with a deterministic wobble, so promotions are checkable by hand.
const space = defineSpace({ name: 'toy', choices: [0, 1, 2, 3].map((i) => ({ name: `c${i}`, options: ['0', '1', '2', '3', '4'] })) });
const evaluator: Evaluator & { seen: EvaluationContext[] } = {
  seen: [],
  evaluate(arch, _encoded, context) {
    if (context) evaluator.seen.push(context);
    const quality = arch.reduce((a, b) => a + b, 0) + ((arch[0] * 7 + arch[1] * 3) % 5) / 10;
    return { validation: quality * (1 - 1 / (1 + (context?.fidelity ?? 1))), cost: context?.fidelity ?? 1 };
  },
};
const trace = (trials: Trial[]): string[] => trials.map((t) => `${t.encoded}@${t.fidelity}:${t.validation}`);

describe('asha', () => {
  it('promotes exactly the top 1/eta of each rung, never twice, and stops at the fidelity budget', async () => {
    evaluator.seen = [];
    const result = await search({ space, strategy: 'asha', strategyOptions: { minFidelity: 1, maxFidelity: 9, reduction: 3 }, evaluator, budget: { fidelity: 120 }, seed: 3 });
    const fidelities = result.trials.map((t) => t.fidelity);
    expect(new Set(fidelities)).toEqual(new Set([1, 3, 9]));
    const total = fidelities.reduce((a: number, b) => a + (b ?? 0), 0);
    expect(total).toBeGreaterThanOrEqual(120);
    expect(total).toBeLessThan(120 + 9);
    // Replay the rule on the observed trials: each promotion at proposal time is the best
    // not-yet-promoted configuration in the top floor(n/3) of the highest rung that has one.
    const rungs: Array<Array<{ encoded: string; validation: number; promoted: boolean }>> = [[], [], []];
    result.trials.forEach((trial, i) => {
      const k = [1, 3, 9].indexOf(trial.fidelity as number);
      if (k > 0) {
        const below = rungs[k - 1];
        const top = below.map((e, j) => ({ e, j })).sort((a, b) => b.e.validation - a.e.validation || a.j - b.j).slice(0, Math.floor(below.length / 3));
        const chosen = top.find(({ e }) => !e.promoted);
        expect(chosen?.e.encoded, `trial ${i}`).toBe(trial.encoded);
        if (chosen) chosen.e.promoted = true;
      }
      rungs[k].push({ encoded: trial.encoded, validation: trial.validation, promoted: false });
    });
    expect(rungs[2].length).toBeGreaterThan(0);
    expect(evaluator.seen.map((c) => c.trial)).toEqual(result.trials.map((_, i) => i));
    expect(evaluator.seen.map((c) => c.fidelity)).toEqual(fidelities);
  });

  it('gives the same trajectory serially, with 4 parallel slots, and when resumed from a checkpoint', async () => {
    const options = { space, strategy: 'asha', strategyOptions: { reduction: 3, maxFidelity: 9 }, evaluator, budget: { fidelity: 90 }, seed: 5, parallel: 4, lookahead: 4 };
    const slow: Evaluator = { evaluate: async (a, e, c) => { await new Promise((r) => setTimeout(r, (a[2] * 3) % 4)); return evaluator.evaluate(a, e, c); } };
    const reference = await search(options);
    const parallel = await search({ ...options, evaluator: slow });
    expect(trace(parallel.trials)).toEqual(trace(reference.trials));
    const checkpoint = memoryCheckpoint();
    await expect(search({ ...options, checkpoint, onTrial: (_t, i) => { if (i === 17) throw new Error('killed'); } })).rejects.toThrow('killed');
    expect(checkpoint.current?.pendingFidelity?.length).toBeGreaterThan(0);
    const resumed = await search({ ...options, evaluator: slow, checkpoint });
    expect(resumed.resumed).toBe(true);
    expect(trace(resumed.trials)).toEqual(trace(reference.trials));
  });

  it('hyperband: new configurations go to the brackets (1, 3, 9 epochs) in turn, promotions within a bracket; same trajectory in parallel, resumed, and past failed trials', async () => {
    const options = { space, strategy: 'hyperband', strategyOptions: { maxFidelity: 9, reduction: 3 }, evaluator, budget: { fidelity: 200 }, seed: 2 };
    const reference = await search(options);
    expect(reference.trials.slice(0, 3).map((t) => t.fidelity)).toEqual([1, 3, 9]);
    const counts = [1, 3, 9].map((f) => reference.trials.filter((t) => t.fidelity === f).length);
    expect(counts.every((c) => c > 0)).toBe(true);
    // A trial is a promotion when its configuration was observed one rung below before it; the
    // others are new configurations, whose first rungs cycle through the brackets: 1, 3, 9, 1, ...
    const fresh = reference.trials.filter((t, i) => !reference.trials.slice(0, i).some((u) => u.encoded === t.encoded && (u.fidelity as number) * 3 === t.fidelity));
    expect(fresh.map((t) => t.fidelity)).toEqual(fresh.map((_, j) => [1, 3, 9][j % 3]));
    expect(fresh.length).toBeLessThan(reference.trials.length);
    const slow: Evaluator = { evaluate: async (a, e, c) => { await new Promise((r) => setTimeout(r, (a[1] * 5) % 3)); return evaluator.evaluate(a, e, c); } };
    const parallelOptions = { ...options, parallel: 3, lookahead: 3 };
    const parallelReference = await search(parallelOptions);
    expect(trace((await search({ ...parallelOptions, evaluator: slow })).trials)).toEqual(trace(parallelReference.trials));
    const checkpoint = memoryCheckpoint();
    await expect(search({ ...parallelOptions, checkpoint, onTrial: (_t, i) => { if (i === 11) throw new Error('killed'); } })).rejects.toThrow('killed');
    expect(trace((await search({ ...parallelOptions, checkpoint })).trials)).toEqual(trace(parallelReference.trials));
    const failing: Evaluator = { evaluate: (a, e, c) => { if (a[3] === 4) throw new Error('diverged'); return evaluator.evaluate(a, e, c); } };
    const withFailures = await search({ ...options, evaluator: failing, failures: 'record' });
    expect(withFailures.trials.some((t) => t.error !== undefined)).toBe(true);
    expect(withFailures.trials.filter((t) => t.error === undefined && t.fidelity === 9).length).toBeGreaterThan(0);
    expect(() => hyperband(space).observe({ arch: [0, 0, 0, 0], encoded: 'c0=0,c1=0,c2=0,c3=0', validation: 1, cost: 1, fidelity: 1 })).toThrow(/did not propose/);
  });

  it('rejects bad settings with a typed error', () => {
    expect(() => asha(space, { reduction: 1 })).toThrow(RsError);
    expect(() => asha(space, { minFidelity: 4, maxFidelity: 2 })).toThrow(/maxFidelity/);
    expect(() => createStrategy('asha', space, { minFidelity: 0 })).toThrow(/minFidelity/);
    const strategy = asha(space);
    expect(() => strategy.observe({ arch: [0, 0, 0, 0], encoded: 'x', validation: 1, cost: 1, fidelity: 2 })).toThrow(/not on a rung/);
  });
});
