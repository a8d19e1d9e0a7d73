import { beforeAll, describe, expect, it } from 'vitest';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { Model, isRsError, lenet300100 } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { defineSpace, search } from '@rs/nas';
import { collectReport } from './index';
import { renderReport } from './node';
import { queueChart } from './specs-queue';

// A search shaped like @rs/nas-queue's queueSearch result: the trials of a local search, plus one
// record per trial saying which of two workers ran it when (trial 2 retried after its worker
// died, trial 4 failed, fidelities as an ASHA run would have them).
const space = defineSpace({ name: 'tiny', choices: [{ name: 'width', options: ['8', '16', '32'] }, { name: 'depth', options: ['1', '2'] }] });
const evaluator = { evaluate: (arch: number[]) => ({ validation: 50 + 10 * arch[0] - 3 * arch[1], cost: 1 }) };

beforeAll(async () => {
  await install();
});

describe('collectReport: queue search timeline', () => {
  it('turns records into per-worker rows in seconds and draws one bar per trial', async () => {
    const result = await search({ space, strategy: 'random', evaluator, budget: { evaluations: 6 }, seed: 1 });
    const t0 = 1_700_000_000_000;
    const records = result.trials.map((_, trial) => ({
      trial, worker: `host:${100 + (trial % 2)}`, startedAt: t0 + trial * 500, finishedAt: t0 + trial * 500 + 400,
      attempt: trial === 2 ? 2 : 1, fidelity: trial < 4 ? 1 : 3, ...(trial === 4 ? { error: 'diverged' } : {}),
    }));
    const model = Model.create(lenet300100({ hidden: [4, 4] }));
    const data = collectReport(model, { search: { ...result, records } });
    model.dispose();
    const timeline = data.search.curves[0].timeline ?? [];
    expect(timeline.map((t) => [t.trial, t.worker, t.start, t.end])).toEqual(records.map((r, i) => [i, r.worker, i * 0.5, i * 0.5 + 0.4]));
    expect(timeline.filter((t) => t.attempt > 1).map((t) => t.trial)).toEqual([2]);
    expect(timeline.filter((t) => t.failed).map((t) => t.trial)).toEqual([4]);
    expect(renderReport(data)).toContain('<section id="queue"><h2>Queue search: trials over time per worker</h2><p class="note">6 trials on 2 workers; 1 retried after their worker died (black outline); 1 failed (red). Trials per fidelity: 1: 4, 3: 2 (above the lowest: promotions).</p>');
    const chart = queueChart(data);
    expect(chart?.section).toBe('queue');
    const view = new vega.View(vega.parse(vegaLite.compile(chart?.spec as unknown as vegaLite.TopLevelSpec).spec), { renderer: 'none' });
    const svg = await view.toSVG();
    view.finalize();
    expect(svg.match(/<path[^>]*aria-roledescription="bar"/g)?.length).toBe(6);
    const plain = Model.create(lenet300100({ hidden: [4, 4] }));
    expect(collectReport(plain, { search: result }).search.curves[0].timeline).toBeUndefined();
    plain.dispose();
  });

  it('rejects a record without worker or times', async () => {
    const result = await search({ space, strategy: 'random', evaluator, budget: { evaluations: 2 }, seed: 1 });
    const model = Model.create(lenet300100({ hidden: [4, 4] }));
    let error: unknown;
    try {
      collectReport(model, { search: { ...result, records: [{ trial: 0, startedAt: 1, finishedAt: 2 }] } });
    } catch (e) {
      error = e;
    }
    model.dispose();
    expect(isRsError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message).toMatch(/record 0/);
  });
});
