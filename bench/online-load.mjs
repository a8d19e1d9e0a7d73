// online-load: @rs/online's HTTP server under load from autocannon while it reorganizes itself.
//
// Settings (declared before the reported run; env overrides are for exploration only):
// - Model: MNIST MLP 784-64-32-10 (lenet300100), seed 0, pretrained 200 steps (Adam 2e-3, batch 64)
//   on the first 2,000 training digits. @rs/backend-wasm (1 thread) in the server and the worker.
// - Server: OnlineServer + listen() on 127.0.0.1, maxBatch 64, replay 1024, canary 256, rollback
//   window 100 labelled requests (margin 0.05). Policies: growOnNeed with errorRise -1 (it always
//   proposes: +8 units to a hidden group, up to 256) so that every change is structural; each
//   change fine-tunes 30 steps (batch 64, Adam 1e-3) in the worker and is swapped in when the
//   canary accuracy does not fall by more than 0.01 (the default rule).
// - Load: autocannon in its own process, 8 connections, AMOUNT (40,000) requests (a fixed number,
//   not a duration, so that every request sent is waited for), POST /predict with one of 16 MNIST
//   test digits per request. Labelled traffic: the bench process itself calls predict +
//   feedback on training digits 2,000.. every 10 ms (in-process API).
// - Changes: the first after 3 s, then the next 2 s after the previous one ends, until the load
//   ends; swaps counted are those committed while the load ran.
// - Figures: failed requests = autocannon errors + timeouts + non-2xx + (sent - completed);
//   "during a swap" = responses whose [end - latency, end] interval overlaps [commit start - 100
//   ms, swap done + 100 ms] of an accepted change; "between swaps" (steady) = responses that
//   overlap no change at all (preparation included); "during a change" = responses overlapping a
//   change from its start (the worker preparing) to 100 ms after its swap. Ratios of p99s.
// - Telemetry cost: one measured batch (model.run with the activation targets, as the server
//   does on one batch in activationEvery = 4) against a plain batch (model.apply), batch 32,
//   300 interleaved pairs, medians; the amortized cost is (measured/plain - 1) / 4.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model, adam, fit, lenet300100, tf } from '@rs/core';
import { selectBackend } from './lib/backends.mjs';
import { loadMnist, MNIST_PIXELS } from '@rs/datasets';
import { OnlineServer, activationTargets, listen, percentile } from '@rs/online';
import { writeResult } from './lib/results.mjs';

const AMOUNT = Number(process.env.AMOUNT ?? 40000);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

await selectBackend('wasm', { threads: 1 });
const data = loadMnist();
const rows = (split, start, count) => split.x.subarray(start * MNIST_PIXELS, (start + count) * MNIST_PIXELS);

const model = Model.create(lenet300100({ hidden: [64, 32] }), { seed: 0 });
{
  const x = tf.tensor2d(rows(data.train, 0, 2000), [2000, MNIST_PIXELS]);
  const y = tf.tensor1d(data.train.y.subarray(0, 2000), 'int32');
  await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 2e-3 }), batchSize: 64, epochs: 10, maxSteps: 200, seed: 0 });
  tf.dispose([x, y]);
}

// Telemetry cost (see the header).
const probe = tf.tensor2d(rows(data.test, 0, 32), [32, MNIST_PIXELS]);
const targets = [model.graph.outputs[0], ...activationTargets(model).map((t) => t.node)];
const plainBatch = () => tf.tidy(() => tf.argMax(model.apply(probe), -1).dataSync());
const measuredBatch = () => {
  const run = model.run(probe, { targets });
  tf.tidy(() => run.outputs.slice(1).forEach((a) => tf.sum(tf.cast(tf.greater(a, 0), 'float32'), 0).dataSync()));
  tf.tidy(() => tf.argMax(run.outputs[0], -1).dataSync());
  tf.dispose([...run.outputs, ...run.losses.values(), ...run.metrics.values(), ...run.activations.values()]);
};
const pairs = { plain: [], measured: [] };
for (let i = 0; i < 310; i += 1) {
  for (const [name, body] of [['plain', plainBatch], ['measured', measuredBatch]]) {
    const start = performance.now();
    body();
    if (i >= 10) pairs[name].push(performance.now() - start);
  }
}
const plain = { median: percentile(pairs.plain, 0.5) };
const measured = { median: percentile(pairs.measured, 0.5) };
probe.dispose();

const dir = mkdtempSync(join(tmpdir(), 'rs-online-load-'));
const server = await OnlineServer.open(model, {
  dir,
  worker: { setup: here('./lib/online-setup.mjs') },
  maxBatch: 64,
  replaySize: 1024,
  canarySize: 256,
  rollback: { window: 100, margin: 0.05 },
  policies: [{ name: 'growOnNeed', options: { errorRise: -1, units: 8, maxUnits: 256 } }],
  fineTune: { steps: 30, batchSize: 64, learningRate: 1e-3 },
});
model.dispose();
const http = await listen(server);

// Labelled traffic, in process.
let labelIndex = 2000;
let labelling = true;
const labeller = (async () => {
  while (labelling) {
    const i = labelIndex++ % data.train.count;
    const p = await server.predict(rows(data.train, i, 1));
    server.feedback(p.id, data.train.y[i]);
    await sleep(10);
  }
})();

const bodies = Array.from({ length: 16 }, (_, i) => JSON.stringify({ input: Array.from(rows(data.test, i, 1), (v) => Math.round(v * 1000) / 1000) }));
const client = fork(here('./lib/online-load-client.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const loadStart = now();
let loadEnd = Infinity;
const loaded = new Promise((resolve) => client.once('message', (m) => {
  loadEnd = now();
  resolve(m);
}));
client.send({ url: `http://127.0.0.1:${http.port}`, connections: CONNECTIONS, amount: AMOUNT, bodies });

const changes = [];
await sleep(3000);
while (loadEnd === Infinity) {
  const outcome = await server.reorganize();
  changes.push({ kind: outcome.kind, version: outcome.kind === 'accepted' ? outcome.version : null, policy: outcome.reply.policy ?? null, reason: outcome.reply.reason ?? outcome.reply.error?.message ?? null, canary: outcome.reply.canary ?? null, timing: outcome.timing });
  await sleep(2000);
}
const load = await loaded;
labelling = false;
await labeller;
await http.close();
const metricsText = server.metrics();
await server.close();
rmSync(dir, { recursive: true, force: true });

const swaps = changes.filter((c) => c.kind === 'accepted' && c.timing.committed < loadEnd);
const swapWindows = swaps.map((c) => [c.timing.commitStart - 100, c.timing.committed + 100]);
const changeWindows = changes.map((c) => [c.timing.start, (c.timing.committed ?? c.timing.prepared) + 100]);
const overlaps = (start, end, windows) => windows.some(([a, b]) => start <= b && end >= a);
const during = [];
const duringChange = [];
const steady = [];
load.ends.forEach((end, i) => {
  const latency = load.latencies[i];
  const start = end - latency;
  if (overlaps(start, end, swapWindows)) during.push(latency);
  if (overlaps(start, end, changeWindows)) duringChange.push(latency);
  else steady.push(latency);
});
const r = load.result;
const failed = r.errors + r.timeouts + r.non2xx + Math.max(0, r.sent - load.ends.length);
const p99Steady = percentile(steady, 0.99);
const p99Swap = percentile(during, 0.99);
const p99Change = percentile(duringChange, 0.99);
writeResult(
  'online-load',
  {
    failed_requests: failed,
    requests: load.ends.length,
    swaps: swaps.length,
    p99_swap_over_p99_steady: p99Swap / p99Steady,
    p99_change_over_p99_steady: p99Change / p99Steady,
    p99_steady_ms: p99Steady,
    p99_swap_ms: p99Swap,
    telemetry_cost_amortized: (measured.median / plain.median - 1) / 4,
  },
  {
    settings: { amount: AMOUNT, connections: CONNECTIONS, model: '784-64-32-10', backend: 'wasm (1 thread)' },
    loadSeconds: (loadEnd - loadStart) / 1000,
    autocannon: r,
    statuses: load.statuses,
    counts: { steady: steady.length, duringSwap: during.length, duringChange: duringChange.length },
    latencyMs: {
      steady: { p50: percentile(steady, 0.5), p99: p99Steady },
      duringSwap: { p50: percentile(during, 0.5), p99: p99Swap },
      duringChange: { p50: percentile(duringChange, 0.5), p99: p99Change },
    },
    telemetry: { plainBatchMs: plain.median, measuredBatchMs: measured.median, activationEvery: 4 },
    changes,
    metrics: metricsText,
  },
);
