import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isRsError } from '@rs/core';
import { loadNasBench201 } from '@rs/datasets';
import { nb201Space, search, tableEvaluator, type Trial } from '@rs/nas';
import { checkRedis, queueEvaluator, queueSearch } from '../src/index';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

// Workers and the killed controller are real processes running the built package (dist), as on
// other machines; the evaluator is the NAS-Bench-201 table behind a short artificial delay.
const url = inject('redisUrl');
const space = nb201Space();
const table = loadNasBench201().rows;
const dir = mkdtempSync(join(tmpdir(), 'rs-nas-queue-'));
const bin = new URL('../dist/bin.js', import.meta.url).pathname;
const fixture = new URL('./fixtures/nb201-evaluator.mjs', import.meta.url).pathname;
const controllerScript = new URL('./fixtures/controller.mjs', import.meta.url).pathname;
const children = new Set<ChildProcess>();
// Every worker fails on one architecture: the fourth proposal of random search with seed 99.
const failOn = (await search({ space, strategy: 'random', evaluator: tableEvaluator(space, table), budget: { evaluations: 4 }, seed: 99 })).trials[3].encoded;

function startWorker(queue: string, options: { delayMs: number; log?: string }): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, '--queue', url, '--queue-name', queue, '--evaluator', `nb201=${fixture}`, '--options', JSON.stringify({ ...options, failOn }), '--lock-ms', '3000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${err}`)));
  });
}
const stopAll = (list: Iterable<ChildProcess>): Promise<unknown> =>
  Promise.all([...list].map((c) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(0) : (c.once('exit', resolve), c.kill('SIGTERM'))))));

const logLines = (path: string): Array<{ event: string; trial: number; pid: number }> =>
  existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; trial: number; pid: number }) : [];
const until = async (condition: () => boolean, what: string, ms = 60_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
// Cost is the measured wall time here (the table has no training times), so it is not compared.
const observed = (trials: Trial[]): string[] => trials.map((t) => `${t.encoded} ${t.validation} ${t.test}`);
const local = (seed: number, evaluations: number): Promise<{ best: Trial; trials: Trial[] }> =>
  search({ space, strategy: 'evolution', evaluator: tableEvaluator(space, table), budget: { evaluations }, seed, parallel: 4, lookahead: 4 });

afterAll(async () => {
  await stopAll(children);
  rmSync(dir, { recursive: true, force: true });
});

describe('queue search on worker processes', () => {
  const queue = 'q-main';
  const log = join(dir, 'main.log');
  let workers: ChildProcess[] = [];
  beforeAll(async () => {
    workers = await Promise.all([0, 1, 2].map(() => startWorker(queue, { delayMs: 60, log })));
  }, 60_000);

  it('a worker SIGKILLed mid-trial loses nothing: its trial is retried elsewhere and counted once, same result as the local search', async () => {
    const reference = await local(11, 24);
    const running = queueSearch({ url, queue, search: 'kill-worker', evaluator: 'nb201', space, strategy: 'evolution', budget: { evaluations: 24 }, seed: 11, parallel: 4, lookahead: 4 });
    const victim = workers[0];
    await until(() => logLines(log).some((l) => l.pid === victim.pid && l.event === 'start'), 'the victim to start a trial');
    const killedTrial = logLines(log).filter((l) => l.pid === victim.pid && l.event === 'start').at(-1)!.trial;
    victim.kill('SIGKILL');
    const result = await running;
    expect(observed(result.trials)).toEqual(observed(reference.trials));
    expect(observed([result.best])).toEqual(observed([reference.best]));
    const lines = logLines(log);
    // The killed trial started on the victim and again on another worker, and ended there; every
    // other trial ran exactly once; the controller counted each trial once.
    expect(lines.filter((l) => l.trial === killedTrial && l.event === 'start').map((l) => l.pid === victim.pid)).toEqual([true, false]);
    const ends = lines.filter((l) => l.event === 'end').map((l) => l.trial).sort((a, b) => a - b);
    expect(ends).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(lines.some((l) => l.event === 'end' && l.pid === victim.pid && l.trial === killedTrial)).toBe(false);
    expect(result.records.find((r) => r.trial === killedTrial)?.attempt).toBe(2);
    expect(new Set(result.records.map((r) => r.trial)).size).toBe(24);
  });

  it('4 worker processes reproduce the local search: same observed results in the same order, same best', async () => {
    workers = [...workers.slice(1), ...(await Promise.all([startWorker(queue, { delayMs: 15 }), startWorker(queue, { delayMs: 15 })]))];
    expect(workers.filter((w) => w.exitCode === null && w.signalCode === null).length).toBe(4);
    const reference = await local(7, 60);
    const result = await queueSearch({ url, queue, search: 'same-trajectory', evaluator: 'nb201', space, strategy: 'evolution', budget: { evaluations: 60 }, seed: 7, parallel: 4, lookahead: 4 });
    expect(observed(result.trials)).toEqual(observed(reference.trials));
    expect(result.best.encoded).toBe(reference.best.encoded);
    // More than one worker did the work (the order of arrival differed from the order observed).
    expect(new Set(result.records.map((r) => r.worker)).size).toBeGreaterThan(1);
  });

  it("a trial that throws on its worker is recorded as failed with its error (failures: 'record') and the search goes on", async () => {
    const failing = { evaluate: (arch: number[], encoded: string) => { if (encoded === failOn) throw new Error('no'); return tableEvaluator(space, table).evaluate(arch, encoded); } };
    const reference = await search({ space, strategy: 'random', evaluator: failing, budget: { evaluations: 8 }, seed: 99, failures: 'record' });
    const result = await queueSearch({ url, queue, search: 'failing', evaluator: 'nb201', space, strategy: 'random', budget: { evaluations: 8 }, seed: 99, parallel: 4, failures: 'record' });
    expect(result.trials.map((t) => t.error !== undefined)).toEqual(reference.trials.map((t) => t.error !== undefined));
    expect(result.trials[3].error).toMatch(/TRIAL_FAILED.*trial 3.*cannot evaluate/);
    expect(result.records.find((r) => r.trial === 3)).toMatchObject({ error: expect.stringMatching(/cannot evaluate/) as unknown, attempt: 1 });
    expect(result.records.find((r) => r.trial === 3)?.worker).toMatch(/:\d+$/);
    expect(observed(result.trials.filter((t) => !t.error))).toEqual(observed(reference.trials.filter((t) => !t.error)));
    await expect(queueSearch({ url, queue, search: 'failing-stop', evaluator: 'nb201', space, strategy: 'random', budget: { evaluations: 8 }, seed: 99, parallel: 4 })).rejects.toThrow(/TRIAL_FAILED/);
  });

  it('a controller SIGKILLed mid-search resumes from its checkpoint and the queue: no trial re-run or lost, same result', async () => {
    const clog = join(dir, 'controller.log');
    await stopAll(workers);
    workers = await Promise.all([0, 1, 2].map(() => startWorker(queue, { delayMs: 30, log: clog })));
    const checkpoint = join(dir, 'controller.json');
    const out = join(dir, 'controller-out.json');
    const settings = { url, queue, search: 'kill-controller', evaluator: 'nb201', strategy: 'evolution', budget: { evaluations: 40 }, seed: 3, parallel: 4, lookahead: 4, checkpoint, out };
    const runController = (): ChildProcess => {
      const child = spawn(process.execPath, [controllerScript, JSON.stringify(settings)], { stdio: 'ignore' });
      children.add(child);
      return child;
    };
    const first = runController();
    await until(() => existsSync(checkpoint) && (JSON.parse(readFileSync(checkpoint, 'utf8')) as { trials: unknown[] }).trials.length >= 12, 'the controller to observe 12 trials');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(existsSync(out)).toBe(false);
    const second = runController();
    const code = await new Promise((r) => second.once('exit', r));
    expect(code).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { resumed: boolean; best: Trial; trials: Trial[]; records: Array<{ trial: number; attempt: number; validation: number }> };
    expect(result.resumed).toBe(true);
    // The records come from the queue: those of trials observed before the kill too.
    expect(result.records.map((r) => [r.trial, r.attempt, r.validation])).toEqual(result.trials.map((t, i) => [i, 1, t.validation]));
    const reference = await local(3, 40);
    expect(observed(result.trials)).toEqual(observed(reference.trials));
    expect(observed([result.best])).toEqual(observed([reference.best]));
    const lines = logLines(clog);
    const count = (event: string): number[] => lines.filter((l) => l.event === event).map((l) => l.trial).sort((a, b) => a - b);
    expect(count('start')).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(count('end')).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });
});

describe('closing the controller while a trial waits', () => {
  it('rejects the waiting trial with TRIAL_FAILED at any moment of the wait (it waited forever), refuses new trials, and leaves no unhandled rejection', async () => {
    // No worker listens on this queue: every trial is still waiting when the evaluator closes.
    const trial = (await search({ space, strategy: 'random', evaluator: tableEvaluator(space, table), budget: { evaluations: 1 }, seed: 5 })).trials[0];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // Close after 0-38 ms: before, during and after the trial's state is first read.
      for (let delay = 0; delay < 40; delay += 2) {
        const evaluator = await queueEvaluator({ url, search: `closing-${process.pid}-${delay}`, evaluator: 'nb201', queue: `rs-closing-${process.pid}` });
        const pending = Promise.resolve(evaluator.evaluate(trial.arch, trial.encoded, { trial: 0 })).then(
          () => 'resolved',
          (e: unknown) => e,
        );
        await new Promise((r) => setTimeout(r, delay));
        await evaluator.close();
        const error = await pending;
        expect(isRsError(error, 'TRIAL_FAILED')).toBe(true);
        expect((error as Error).message).toMatch(/closed/);
        await expect(Promise.resolve(evaluator.evaluate(trial.arch, trial.encoded, { trial: 1 }))).rejects.toThrow(/is closed/);
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('no Redis', () => {
  it('gives QUEUE_UNREACHABLE naming the URL within 5 s, for the controller and for a worker, before any queue object exists', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = server.address() as { port: number };
        server.close(() => resolve(p));
      });
    });
    for (const dead of [`redis://127.0.0.1:${port}`, 'redis://10.255.255.1:6379']) {
      const started = Date.now();
      const error = await queueEvaluator({ url: dead, search: 'nowhere', evaluator: 'nb201' }).then(() => undefined, (e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(isRsError(error, 'QUEUE_UNREACHABLE')).toBe(true);
      expect((error as Error).message).toContain(dead);
    }
    const worker = spawn(process.execPath, [bin, '--queue', `redis://127.0.0.1:${port}`, '--evaluator', `nb201=${fixture}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    worker.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise((r) => worker.once('exit', r))).toBe(3);
    expect(stderr).toContain(`QUEUE_UNREACHABLE`);
    expect(stderr).toContain(`redis://127.0.0.1:${port}`);
    // The check runs before any queue object exists: the worker exited instead of retrying, and the live server answers.
    await expect(checkRedis(url)).resolves.toBeUndefined();
  });

  it('rejects a malformed URL and a bad search id with a typed error', async () => {
    await expect(queueEvaluator({ url: 'http://x', search: 's', evaluator: 'e' })).rejects.toThrow(/not a Redis URL/);
    await expect(queueEvaluator({ url, search: 'a:b', evaluator: 'e' })).rejects.toThrow(/search id/);
  });
});
