import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRsError } from '@rs/core';
import { loadNasBench201 } from '@rs/datasets';
import {
  nb201Space, defineSpace, createStrategy, search, tableEvaluator, memoryCheckpoint, regularizedEvolution, reinforce, anytimeCurve,
  type Evaluator, type SearchResult,
} from './index';
import { fileCheckpoint, workerPool } from './node';

const table = loadNasBench201().rows;
const space = nb201Space();

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isRsError(e) ? e.code : `not an RsError: ${String(e)}`;
  }
  return 'no error';
}

async function asyncCodeOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return isRsError(e) ? e.code : `not an RsError: ${String(e)}`;
  }
  return 'no error';
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('NAS-Bench-201 space', () => {
  it('round-trips all 15,625 table strings and reproduces the table index order', () => {
    const seen = new Set<string>();
    for (const row of table) {
      const arch = space.decode(row.arch);
      expect(space.encode(arch)).toBe(row.arch);
      seen.add(arch.join(''));
    }
    expect(seen.size).toBe(space.size);
    expect(space.size).toBe(15625);
  });

  it('rejects malformed architecture strings with INVALID_ARCHITECTURE', () => {
    const good = '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|';
    expect(codeOf(() => space.decode(good))).toBe('no error');
    for (const bad of [
      '',
      'garbage',
      good.replace('nor_conv_3x3~0|+', 'nor_conv_5x5~0|+'),
      good.replace('avg_pool_3x3~1', 'avg_pool_3x3~2'),
      good.replace('|+|skip_connect~0|', '|skip_connect~0|'),
      good.slice(1),
      good + '+|none~0|',
      '|none~0|+|none~0|none~1|+|none~0|none~1|',
    ]) {
      expect(codeOf(() => space.decode(bad)), bad).toBe('INVALID_ARCHITECTURE');
    }
    expect(codeOf(() => space.encode([0, 1, 2, 3, 4, 5]))).toBe('INVALID_ARCHITECTURE');
    expect(codeOf(() => space.encode([0, 1, 2]))).toBe('INVALID_ARCHITECTURE');
    expect(codeOf(() => space.encode([0, 1, 2, 3, 4, 1.5]))).toBe('INVALID_ARCHITECTURE');
  });

  it('rejects empty spaces and unknown strategies', () => {
    expect(codeOf(() => defineSpace({ name: 'nothing', choices: [] }))).toBe('EMPTY_SPACE');
    expect(codeOf(() => defineSpace({ name: 'hollow', choices: [{ name: 'a', options: [] }] }))).toBe('EMPTY_SPACE');
    expect(codeOf(() => createStrategy('hill-climbing', space))).toBe('UNKNOWN_STRATEGY');
    expect(codeOf(() => createStrategy('toString', space))).toBe('UNKNOWN_STRATEGY');
  });
});

describe('search on the table', () => {
  const evaluator = tableEvaluator(space, table);

  it('rejects budgets at most 0 and other bad budgets with INVALID_BUDGET', async () => {
    for (const budget of [{ evaluations: 0 }, { evaluations: -5 }, { evaluations: 2.5 }, { seconds: 0 }, { seconds: -1 }, {}]) {
      expect(await asyncCodeOf(() => search({ space, strategy: 'random', evaluator, budget }))).toBe('INVALID_BUDGET');
    }
  });

  it('spends exactly the budget, picks the best by validation, and reports its test accuracy', async () => {
    const result = await search({ space, strategy: 'evolution', evaluator, budget: { evaluations: 100 }, seed: 3 });
    expect(result.trials).toHaveLength(100);
    const bestValidation = Math.max(...result.trials.map((t) => t.validation));
    expect(result.best.validation).toBe(bestValidation);
    const row = table.find((r) => r.arch === result.best.encoded);
    expect(result.best.test).toBe(row?.testAccuracy);
    const curve = result.anytime.map((p) => p.bestValidation);
    expect(curve.every((v, i) => i === 0 || v >= curve[i - 1])).toBe(true);
    expect(curve[99]).toBe(bestValidation);
  });

  it('regularized evolution beats random search on average (40 seeds, 100 evaluations)', async () => {
    const runs = async (strategy: string): Promise<number[]> => {
      const tests: number[] = [];
      for (let seed = 0; seed < 40; seed++) tests.push((await search({ space, strategy, evaluator, budget: { evaluations: 100 }, seed })).best.test as number);
      return tests;
    };
    const rea = mean(await runs('evolution'));
    const rs = mean(await runs('random'));
    expect(rea).toBeGreaterThan(rs);
    expect(rea).toBeGreaterThan(93.5);
  });

  it('evolution keeps a population of P by removing the oldest', () => {
    const strategy = regularizedEvolution(space, { population: 3, sampleSize: 2 });
    for (let i = 0; i < 5; i++) strategy.observe({ arch: [i % 5, 0, 0, 0, 0, 0], encoded: '', validation: i, cost: 0 });
    const state = strategy.state() as { members: Array<{ validation: number }> };
    expect(state.members.map((m) => m.validation)).toEqual([2, 3, 4]);
  });

  it('REINFORCE moves probability towards rewarded choices', async () => {
    const toy = defineSpace({ name: 'toy', choices: [{ name: 'a', options: ['x', 'y', 'z'] }] });
    const strategy = reinforce(toy, { learningRate: 0.05 });
    const result = await search({ space: toy, strategy, evaluator: { evaluate: (arch) => ({ validation: arch[0] === 2 ? 100 : 0 }) }, budget: { evaluations: 200 }, seed: 1 });
    const last50 = result.trials.slice(-50).filter((t) => t.arch[0] === 2).length;
    expect(last50).toBeGreaterThan(40);
  });

  it('a search killed mid-way and resumed from its checkpoint file returns the same result as an uninterrupted one', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'rs-nas-'));
    try {
      for (const [strategy, parallel] of [['evolution', 1], ['reinforce', 1], ['random', 4], ['evolution', 3]] as const) {
        const options = { space, strategy, evaluator, budget: { evaluations: 60 }, seed: 11, parallel };
        const straight = await search(options);
        const path = join(directory, `${strategy}-${parallel}.json`);
        let calls = 0;
        const crashing: Evaluator = {
          evaluate(arch, encoded) {
            if (++calls === 37) throw new Error('killed');
            return evaluator.evaluate(arch, encoded);
          },
        };
        await expect(search({ ...options, evaluator: crashing, checkpoint: fileCheckpoint(path) })).rejects.toThrow('killed');
        // A fresh process would build everything anew: a new strategy object, the checkpoint file.
        const resumed: SearchResult = await search({ ...options, strategy, checkpoint: fileCheckpoint(path) });
        expect(resumed.resumed).toBe(true);
        const strip = (r: SearchResult): unknown => r.trials.map((t) => [t.encoded, t.validation, t.test]);
        expect(strip(resumed)).toEqual(strip(straight));
        expect(resumed.best.encoded).toBe(straight.best.encoded);
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('parallel evaluation: a free slot starts the next trial at once, never more than `parallel` run, and the result does not depend on timing', async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const runWith = async (wait: (call: number) => Promise<unknown>) => {
      let calls = 0;
      let running = 0;
      let most = 0;
      const events: string[] = [];
      const timed: Evaluator = {
        async evaluate(arch, encoded) {
          const call = calls++;
          running += 1;
          most = Math.max(most, running);
          events.push(`start ${call}`);
          await wait(call);
          events.push(`end ${call}`);
          running -= 1;
          return evaluator.evaluate(arch, encoded);
        },
      };
      const result = await search({ space, strategy: 'evolution', strategyOptions: { population: 6, sampleSize: 3 }, evaluator: timed, budget: { evaluations: 24 }, seed: 5, parallel: 2 });
      return { result, most, events };
    };
    // The first trial is slow: the second slot runs the next ones meanwhile (lookahead 2: trials 1-3).
    // It ends once trial 3 has started (or after 5 s, when the assertion below then fails), not
    // after a fixed time that a loaded machine could overrun.
    let thirdStarted = (): void => undefined;
    const third = new Promise<void>((resolve) => (thirdStarted = resolve));
    const slowFirst = await runWith((call) => {
      if (call === 3) thirdStarted();
      return call === 0 ? Promise.race([third, sleep(5000)]) : sleep(2);
    });
    expect(slowFirst.events.indexOf('start 3')).toBeLessThan(slowFirst.events.indexOf('end 0'));
    expect(slowFirst.most).toBe(2);
    // Other timings, same trials in the same order (observed in proposal order).
    const jittered = await runWith((call) => sleep(((call * 7) % 5) * 3));
    const strip = (r: SearchResult): unknown => r.trials.map((t) => [t.encoded, t.validation]);
    expect(strip(jittered.result)).toEqual(strip(slowFirst.result));
    expect(jittered.most).toBe(2);
    expect(await asyncCodeOf(() => search({ space, strategy: 'random', evaluator, budget: { evaluations: 5 }, parallel: 2, lookahead: -1 }))).toBe('INVALID_ARGUMENT');
  });

  it('refuses a checkpoint of an older format', async () => {
    const store = memoryCheckpoint();
    await search({ space, strategy: 'random', evaluator, budget: { evaluations: 5 }, seed: 1, checkpoint: store });
    (store.current as unknown as { version: number }).version = 1;
    expect(await asyncCodeOf(() => search({ space, strategy: 'random', evaluator, budget: { evaluations: 5 }, seed: 1, checkpoint: store }))).toBe('INVALID_ARGUMENT');
  });

  it('refuses a checkpoint of another search', async () => {
    const store = memoryCheckpoint();
    await search({ space, strategy: 'random', evaluator, budget: { evaluations: 5 }, seed: 1, checkpoint: store });
    expect(await asyncCodeOf(() => search({ space, strategy: 'evolution', evaluator, budget: { evaluations: 5 }, seed: 1, checkpoint: store }))).toBe('INVALID_ARGUMENT');
  });

  it('stops on a seconds budget using the evaluator costs', async () => {
    const result = await search({ space, strategy: 'random', evaluator: { evaluate: () => ({ validation: 1, cost: 2.5 }) }, budget: { seconds: 10 }, seed: 0 });
    expect(result.trials).toHaveLength(4);
    expect(anytimeCurve(result.trials).at(-1)?.seconds).toBe(10);
  });
});

describe('worker pool', () => {
  const module = new URL('../test/fixtures/sum-evaluator.mjs', import.meta.url);

  it('evaluates on several workers and returns results in proposal order', async () => {
    const pool = await workerPool({ module, workers: 2, options: { delayMs: 5 } });
    try {
      const result = await search({ space, strategy: 'random', evaluator: pool, budget: { evaluations: 12 }, seed: 4, parallel: 2 });
      expect(result.trials.map((t) => t.validation)).toEqual(result.trials.map((t) => t.arch.reduce((a, b) => a + b, 0)));
      expect(new Set(result.trials.map((t) => t.test))).toEqual(new Set([0, 1]));
    } finally {
      await pool.close();
    }
  });

  it('passes evaluation errors back with their code', async () => {
    const encoded = space.encode([0, 0, 0, 0, 0, 0]);
    const pool = await workerPool({ module, workers: 1, options: { failOn: encoded } });
    try {
      await expect(Promise.resolve(pool.evaluate([0, 0, 0, 0, 0, 0], encoded))).rejects.toMatchObject({ code: 'INVALID_ARCHITECTURE' });
      expect((await pool.evaluate([1, 0, 0, 0, 0, 0], space.encode([1, 0, 0, 0, 0, 0]))).validation).toBe(1);
    } finally {
      await pool.close();
    }
  });
});
