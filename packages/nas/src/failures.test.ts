import { describe, expect, it } from 'vitest';
import { defineSpace, memoryCheckpoint, search, type Evaluator } from './index';

const space = defineSpace({ name: 'toy', choices: [0, 1, 2].map((i) => ({ name: `c${i}`, options: ['0', '1', '2', '3'] })) });
// Fails on every architecture whose first choice is 3, including the best ones.
const evaluator: Evaluator = {
  evaluate(arch, encoded) {
    if (arch[0] === 3) throw new Error(`out of memory on ${encoded}`);
    return { validation: arch[0] * 10 + arch[1] + arch[2] / 10, cost: 1 };
  },
};

describe("search with failures: 'record'", () => {
  it('keeps a failed trial with its error, never picks it, and goes on to the full budget', async () => {
    await expect(search({ space, strategy: 'evolution', evaluator, budget: { evaluations: 30 }, seed: 2 })).rejects.toThrow(/out of memory/);
    const result = await search({ space, strategy: 'evolution', evaluator, budget: { evaluations: 30 }, seed: 2, failures: 'record', parallel: 2 });
    expect(result.trials).toHaveLength(30);
    const failed = result.trials.filter((t) => t.error !== undefined);
    expect(failed.length).toBeGreaterThan(0);
    for (const t of failed) {
      expect(t.arch[0]).toBe(3);
      expect(t.error).toBe(`out of memory on ${t.encoded}`);
      expect(Number.isNaN(t.validation)).toBe(true);
    }
    expect(result.best.error).toBeUndefined();
    expect(result.best.validation).toBe(Math.max(...result.trials.filter((t) => !t.error).map((t) => t.validation)));
    expect(result.anytime.every((p) => Number.isFinite(p.bestValidation))).toBe(true);
  });

  it('a resumed search (failed trials in the JSON checkpoint) returns the same trials', async () => {
    const options = { space, strategy: 'evolution', evaluator, budget: { evaluations: 30 }, seed: 4, failures: 'record' as const };
    const reference = await search(options);
    const checkpoint = memoryCheckpoint();
    await expect(search({ ...options, checkpoint, onTrial: (_t, i) => { if (i === 20) throw new Error('killed'); } })).rejects.toThrow('killed');
    expect(checkpoint.current?.trials.some((t) => t.error !== undefined)).toBe(true);
    const resumed = await search({ ...options, checkpoint });
    expect(resumed.trials.map((t) => [t.encoded, t.validation, t.error])).toEqual(reference.trials.map((t) => [t.encoded, t.validation, t.error]));
    expect(resumed.best).toEqual(reference.best);
  });
});
