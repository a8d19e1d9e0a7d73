import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { install } from '@rs/backend-cpu';
import { Model, adam, fit, isRsError, lenet300100, loadFromBuffer, tf } from '@rs/core';
import { OnlineServer, listen, type PolicySpec } from './index';

const here = (name: string) => fileURLToPath(new URL(`../test/${name}`, import.meta.url));
// The worker runs this package's sources: the module hooks strip types and map the default
// entry (src/worker.js, the built name) to src/worker.ts. @rs/core and the backend come from
// their builds (the test task builds dependencies first).
const worker = { setup: here('fixtures/setup.mjs'), execArgv: ['--import', here('ts-hooks.mjs')] };
const policy = (name: string): PolicySpec => ({ module: here('fixtures/policies.mjs'), export: name });

// The task: 8 inputs, the label is the argmax of the first three.
function sample(i: number): { row: number[]; label: number } {
  const row = Array.from({ length: 8 }, (_, j) => Math.sin(i * 12.9898 + j * 78.233) * 2);
  return { row, label: row.slice(0, 3).indexOf(Math.max(...row.slice(0, 3))) };
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rs-online-'));
  dirs.push(dir);
  return dir;
}

let trained: Uint8Array;

beforeAll(async () => {
  await install();
  const model = Model.create(lenet300100({ inputs: 8, hidden: [16, 8], classes: 3 }), { seed: 1 });
  const data = Array.from({ length: 512 }, (_, i) => sample(i));
  const x = tf.tensor2d(data.map((d) => d.row));
  const y = tf.tensor1d(data.map((d) => d.label), 'int32');
  await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.01 }), epochs: 30, batchSize: 64 });
  tf.dispose([x, y]);
  const { saveToBuffer } = await import('@rs/core');
  trained = new Uint8Array(saveToBuffer(model));
  model.dispose();
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Serves `count` requests from `offset` and labels all of them. */
async function traffic(server: OnlineServer, offset: number, count: number): Promise<number[]> {
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => server.predict(sample(offset + i).row)));
  answers.forEach((p, i) => server.feedback(p.id, sample(offset + i).label));
  return answers.map((p) => p.version);
}

describe('OnlineServer', () => {
  let server: OnlineServer;
  let tensorsBefore: number;

  beforeAll(async () => {
    tensorsBefore = tf.memory().numTensors;
    const initial = loadFromBuffer(trained);
    server = await OnlineServer.open(initial, { dir: tempDir(), worker, fineTune: { steps: 5 }, rollback: { window: 30, margin: 0.05 } });
    initial.dispose();
    await traffic(server, 0, 200);
  });

  afterAll(async () => {
    await server.close();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('answers concurrent requests in batches and measures the traffic', async () => {
    const accuracy = server.telemetry.snapshot(server.version).accuracy!;
    expect(accuracy).toBeGreaterThan(0.85);
    const snapshot = server.telemetry.snapshot(server.version);
    expect(snapshot.activationRates.fc1).toHaveLength(16);
    expect(snapshot.activationSamples).toBeGreaterThan(0);
    expect(() => server.feedback(123456, 0)).toThrow(/unknown or too old/);
    await expect(server.predict([1, 2])).rejects.toThrow(/8 numbers/);
  });

  it('refuses a policy whose edit core rejects, logs it with its typed error, and keeps serving', async () => {
    const before = server.current.counts();
    const outcome = await server.reorganize({ policies: [policy('invalidEdit')] });
    expect(outcome.kind).toBe('refused');
    expect(outcome.kind === 'refused' && isRsError(outcome.error, 'UNIT_INDEX_OUT_OF_RANGE')).toBe(true);
    const last = server.history().at(-1)!;
    expect(last).toMatchObject({ kind: 'refused', serving: 0, policy: 'invalidEdit', error: { code: 'UNIT_INDEX_OUT_OF_RANGE' } });
    expect(server.version).toBe(0);
    expect(server.current.counts()).toEqual(before);
    expect(await traffic(server, 200, 20)).toEqual(new Array(20).fill(0));
  });

  it('keeps serving the old version with nothing half-applied when the worker is killed mid-change', async () => {
    const probe = tf.tensor2d([sample(900).row, sample(901).row]);
    const outputsBefore = server.current.apply(probe);
    const storeBefore = server.history().length;
    let killed = 0;
    server.worker.onProgress = (stage, pid) => {
      if (stage === 'edited') {
        killed = pid;
        process.kill(pid, 'SIGKILL');
      }
    };
    const change = server.reorganize({ policies: [policy('widen')] });
    const during = await traffic(server, 300, 30);
    const outcome = await change;
    server.worker.onProgress = undefined;
    expect(killed).toBeGreaterThan(0);
    expect(outcome.kind).toBe('workerFailed');
    expect(during.every((v) => v === 0)).toBe(true);
    expect(server.version).toBe(0);
    expect(server.store.current()).toBe(0);
    expect(existsSync(server.store.fileOf(1))).toBe(false);
    expect(server.current.group('fc1').size).toBe(16);
    const outputsAfter = server.current.apply(probe);
    expect(Array.from(outputsAfter.dataSync())).toEqual(Array.from(outputsBefore.dataSync()));
    tf.dispose([probe, outputsBefore, outputsAfter]);
    const events = server.history().slice(storeBefore);
    expect(events.map((e) => e.kind)).toEqual(['workerFailed']);
    expect(events[0]!.error!.code).toBe('WORKER_DIED');

    // The next change forks a new worker and goes through: widened, journaled, swapped.
    const next = await server.reorganize({ policies: [policy('widen')] });
    expect(next.kind).toBe('accepted');
    expect(server.version).toBe(1);
    expect(server.current.group('fc1').size).toBe(20);
    expect(server.current.journal.at(-1)).toMatchObject({ technique: 'online:widen', reason: 'widen fc1 by 4' });
    expect(server.store.current()).toBe(1);
    expect((await traffic(server, 400, 40)).every((v) => v === 1)).toBe(true);
    expect(server.version).toBe(1); // 40 labelled requests, no regression: kept
  });

  it('rolls back a regression after a swap within the rollback window', async () => {
    const outcome = await server.reorganize({ policies: [policy('corrupt')] });
    expect(outcome.kind).toBe('accepted');
    expect(server.version).toBe(2);
    // The window is 30 labelled requests served by version 2: still version 2 after 29 of them...
    for (let i = 0; i < 29; i += 1) {
      const p = await server.predict(sample(500 + i).row);
      expect(p.version).toBe(2);
      server.feedback(p.id, sample(500 + i).label);
    }
    expect(server.version).toBe(2);
    // ...and rolled back at the 30th.
    const p = await server.predict(sample(529).row);
    server.feedback(p.id, sample(529).label);
    expect(server.version).toBe(1);
    expect(server.store.current()).toBe(1);
    const last = server.history().at(-1)!;
    expect(last).toMatchObject({ kind: 'rolledBack', serving: 1, version: 2 });
    expect((last.details as { after: number; before: number }).after).toBeLessThan((last.details as { before: number }).before - 0.05);
    expect(server.counters.rollbacks).toBe(1);
    expect((await traffic(server, 600, 10)).every((v) => v === 1)).toBe(true);
  });

  it('serves over HTTP: predict, feedback, health and Prometheus metrics', async () => {
    const http = await listen(server);
    try {
      const base = `http://127.0.0.1:${http.port}`;
      const health = (await (await fetch(`${base}/health`)).json()) as { status: string; version: number };
      expect(health).toEqual({ status: 'ok', version: 1 });
      const answer = (await (await fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify({ input: sample(700).row }) })).json()) as { id: number; label: number };
      expect(answer.label).toBeGreaterThanOrEqual(0);
      const fed = await fetch(`${base}/feedback`, { method: 'POST', body: JSON.stringify({ id: answer.id, label: sample(700).label }) });
      expect(fed.status).toBe(200);
      const bad = await fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify({ input: [1] }) });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { code: string }).code).toBe('DATA_MISMATCH');
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^rs_online_version 1$/m);
      expect(metrics).toMatch(/^rs_online_rollbacks_total 1$/m);
      expect(metrics).toMatch(/^rs_online_latency_ms\{quantile="0.99"\} [0-9.]+$/m);
    } finally {
      await http.close();
    }
  });
});

describe('a crash right after a swap', () => {
  it('restarts serving the last accepted version with its journal', async () => {
    const dir = tempDir();
    const child = fork(here('fixtures/serve-and-swap.mjs'), [dir], { execArgv: ['--import', here('ts-hooks.mjs')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const report = await new Promise<{ kind: string; version: number; journal: number; outputs: number[] }>((resolve, reject) => {
      child.once('message', (m) => {
        child.kill('SIGKILL');
        resolve(m as never);
      });
      child.once('exit', (code) => reject(new Error(`the serving process exited (${String(code)}) before reporting a swap`)));
    });
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    expect(child.signalCode).toBe('SIGKILL');
    expect(report).toMatchObject({ kind: 'accepted', version: 1 });

    const restarted = await OnlineServer.open(undefined, { dir, worker });
    try {
      expect(restarted.version).toBe(1);
      expect(restarted.current.journal).toHaveLength(report.journal);
      expect(restarted.current.journal.at(-1)!.technique).toBe('online:widen');
      expect(restarted.history().map((e) => e.kind)).toEqual(['initial', 'accepted', 'restarted']);
      const probe = tf.tensor2d([sample(1000).row, sample(1001).row]);
      const rng = (i: number) => Array.from({ length: 8 }, (_, j) => Math.sin(i * 7.1 + j * 3.3));
      const same = tf.tensor2d([rng(1000), rng(1001)]);
      const out = restarted.current.apply(same);
      const values = Array.from(out.dataSync());
      report.outputs.forEach((v, i) => expect(Math.abs(v - values[i]!)).toBeLessThan(1e-5));
      tf.dispose([probe, same, out]);
    } finally {
      await restarted.close();
    }
  });
});
