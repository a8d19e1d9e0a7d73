// online-drift: a served MNIST model under a drifting stream, three arms on the same stream.
//
// Settings (declared before the reported run; env overrides are for exploration only):
// - Data: @rs/datasets loadMnist (8,000 training digits; the stream uses only those). Backend:
//   @rs/backend-wasm, one thread, in the benchmark and in @rs/online's worker process.
// - Stream (per seed, order drawn with createRng(seed)): class-incremental split MNIST, then a
//   permutation drift. Phases 1-5: 700 requests each of the digit pairs {0,1}, {2,3}, {4,5},
//   {6,7}, {8,9} (10-way labels throughout); phase 6: 2,000 requests of all ten digits with
//   their pixels permuted by one fixed permutation (createRng(1000 + seed)). 5,500 requests.
//   The first 400 training digits of {0,1} in the seed's order pretrain the initial model and
//   never appear in the stream. A request gets a feedback label with probability 0.3.
// - Initial model (all arms): MLP 784-64-32-10 (lenet300100), seed = seed, 100 steps of Adam
//   2e-3, batch 64, on the 400 pretraining digits.
// - Accuracy over time: prequential (each request's answer against its true label, before any
//   update uses it), in blocks of 500 requests (11 blocks); AUC = mean block accuracy (area under
//   the accuracy-vs-requests curve, normalized to [0, 1]).
// - Every 500 requests (a block end), arms (b) and (c) update (10 times); requests are answered in chunks of
//   25 (concurrent calls, batched by the server).
//   (a) static: the initial model, never updated.
//   (b) periodic full retraining: a fresh 784-64-32-10 (seed 100 x seed + k at the k-th retrain)
//       trained 150 steps (Adam 2e-3, batch 64) on the replay buffer: the last 1,024 labelled
//       requests. Skipped while fewer than 64 labels exist.
//   (c) @rs/online: OnlineServer with the default policies (growOnNeed, pruneInactive, refresh),
//       growOnNeed options { units: 16, maxUnits: 96, errorRise: 0.05 }, telemetry window 150
//       labels, replay 1,024 rows, canary 256 rows (one label in 5), rollback window 100 labels
//       (margin 0.05), fine-tuning 96 steps (Adam 2e-3, batch 64) per change, default acceptance
//       (canary accuracy may fall by at most 0.01). reorganize() is awaited at each block end
//       (the stream waits, as it waits for (b)'s retraining: the clock is the request count).
// - Compute: training FLOPs = 3 x forward FLOPs per row x rows trained (forward + backward), with
//   the model's own FLOP count at that time (core's counts); (c) also counts its two canary
//   evaluations per change (forward only). 96 steps x at most 1.5x the FLOPs per row (96-unit
//   cap) stays under (b)'s 150 steps by construction; the measured totals are reported.
// - Seeds 0, 1, 2. Summary: means over seeds; details: per seed, spread, curves, parameters and
//   FLOPs per request per block, and every change (c) made. The load-test figures
//   (failed_requests, swaps, p99_swap_over_p99_steady) are copied from
//   bench/results/online-load.json (`pnpm bench online-load`), with its date.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model, adam, createRng, fit, lenet300100, permutation, tf } from '@rs/core';
import { selectBackend } from './lib/backends.mjs';
import { loadMnist, MNIST_PIXELS, permutePixels } from '@rs/datasets';
import { OnlineServer } from '@rs/online';
import { writeResult } from './lib/results.mjs';

const SEEDS = (process.env.SEEDS ?? '0,1,2').split(',').map(Number);
const PHASE = Number(process.env.PHASE ?? 700);
const DRIFT = Number(process.env.DRIFT ?? 2000);
const PRETRAIN = 400;
const LABEL_FRACTION = 0.3;
const BLOCK = 500;
const CHUNK = 25;
const BUFFER = 1024;
const RETRAIN_STEPS = 150;
const ONLINE_STEPS = 96;
const BATCH = 64;
const LR = 2e-3;
const here = (name) => fileURLToPath(new URL(name, import.meta.url));

await selectBackend('wasm', { threads: 1 });
const data = loadMnist();
const row = (i) => data.train.x.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);

function buildStream(seed) {
  const rng = createRng(seed);
  const order = Array.from(permutation(data.train.count, rng));
  const byClass = Array.from({ length: 10 }, () => []);
  for (const i of order) byClass[data.train.y[i]].push(i);
  const pretrain = [...byClass[0].slice(0, PRETRAIN / 2), ...byClass[1].slice(0, PRETRAIN / 2)];
  const used = new Set(pretrain);
  const requests = [];
  for (let task = 0; task < 5; task += 1) {
    const pool = [...byClass[2 * task], ...byClass[2 * task + 1]].filter((i) => !used.has(i));
    const pick = Array.from(permutation(pool.length, rng)).slice(0, PHASE).map((k) => pool[k]);
    for (const i of pick) requests.push({ x: row(i), y: data.train.y[i], phase: task });
  }
  const pixels = Int32Array.from(permutation(MNIST_PIXELS, createRng(1000 + seed)));
  for (const i of Array.from(permutation(data.train.count, rng)).slice(0, DRIFT)) requests.push({ x: permutePixels(row(i), pixels), y: data.train.y[i], phase: 5 });
  for (const r of requests) r.labelled = rng.next() < LABEL_FRACTION;
  return { pretrain, requests };
}

function flopsOf(model) {
  return model.counts().flops;
}

async function initialModel(seed, pretrain) {
  const model = Model.create(lenet300100({ hidden: [64, 32] }), { seed });
  const x = tf.tensor2d(Float32Array.from(pretrain.flatMap((i) => Array.from(row(i)))), [pretrain.length, MNIST_PIXELS]);
  const y = tf.tensor1d(Int32Array.from(pretrain.map((i) => data.train.y[i])), 'int32');
  await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: LR }), batchSize: BATCH, epochs: 100, maxSteps: 100, seed });
  tf.dispose([x, y]);
  return model;
}

function predictRows(model, rows) {
  return tf.tidy(() => {
    const x = tf.tensor2d(Float32Array.from(rows.flatMap((r) => Array.from(r.x))), [rows.length, MNIST_PIXELS]);
    return Array.from(tf.argMax(model.apply(x), -1).dataSync());
  });
}

/** Arms (a) and (b): a model answered in chunks, retrained from scratch at block ends (b). */
async function runBaseline(seed, stream, retrain) {
  let model = await initialModel(seed, stream.pretrain);
  const buffer = [];
  const blocks = [];
  let flops = 0;
  let retrains = 0;
  for (let start = 0; start < stream.requests.length; start += BLOCK) {
    const block = stream.requests.slice(start, start + BLOCK);
    let correct = 0;
    for (let c = 0; c < block.length; c += CHUNK) {
      const chunk = block.slice(c, c + CHUNK);
      predictRows(model, chunk).forEach((p, i) => {
        if (p === chunk[i].y) correct += 1;
        if (chunk[i].labelled) buffer.push(chunk[i]);
      });
      if (buffer.length > BUFFER) buffer.splice(0, buffer.length - BUFFER);
    }
    const counts = model.counts();
    blocks.push({ accuracy: correct / block.length, params: counts.params, flopsPerRequest: counts.flops, trainFlops: flops });
    if (retrain && buffer.length >= BATCH && start + BLOCK < stream.requests.length) {
      retrains += 1;
      model.dispose();
      model = Model.create(lenet300100({ hidden: [64, 32] }), { seed: 100 * seed + retrains });
      const x = tf.tensor2d(Float32Array.from(buffer.flatMap((r) => Array.from(r.x))), [buffer.length, MNIST_PIXELS]);
      const y = tf.tensor1d(Int32Array.from(buffer.map((r) => r.y)), 'int32');
      const history = await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: LR }), batchSize: BATCH, epochs: 1000, maxSteps: RETRAIN_STEPS, seed: retrains });
      tf.dispose([x, y]);
      flops += 3 * flopsOf(model) * history.steps * Math.min(BATCH, buffer.length);
    }
  }
  const final = model.counts();
  model.dispose();
  return { blocks, trainFlops: flops, retrains, finalFlopsPerRequest: final.flops, finalParams: final.params };
}

/** Arm (c): @rs/online. */
async function runOnline(seed, stream) {
  const initial = await initialModel(seed, stream.pretrain);
  const dir = mkdtempSync(join(tmpdir(), 'rs-online-drift-'));
  const server = await OnlineServer.open(initial, {
    dir,
    worker: { setup: here('./lib/online-setup.mjs') },
    policies: [{ name: 'growOnNeed', options: { units: 16, maxUnits: 96, errorRise: 0.05 } }, 'pruneInactive', 'refresh'],
    window: 150,
    replaySize: BUFFER,
    canarySize: 256,
    canaryEvery: 5,
    rollback: { window: 100, margin: 0.05 },
    fineTune: { steps: ONLINE_STEPS, batchSize: BATCH, learningRate: LR },
  });
  initial.dispose();
  const blocks = [];
  const changes = [];
  let flops = 0;
  try {
    for (let start = 0; start < stream.requests.length; start += BLOCK) {
      const block = stream.requests.slice(start, start + BLOCK);
      let correct = 0;
      for (let c = 0; c < block.length; c += CHUNK) {
        const chunk = block.slice(c, c + CHUNK);
        const answers = await Promise.all(chunk.map((r) => server.predict(r.x)));
        answers.forEach((p, i) => {
          if (p.label === chunk[i].y) correct += 1;
          if (chunk[i].labelled) server.feedback(p.id, chunk[i].y);
        });
      }
      const counts = server.current.counts();
      blocks.push({ accuracy: correct / block.length, params: counts.params, flopsPerRequest: counts.flops, trainFlops: flops, version: server.version });
      if (start + BLOCK < stream.requests.length) {
        const outcome = await server.reorganize();
        const reply = outcome.reply;
        if (reply.type === 'candidate') flops += 3 * reply.flopsPerRow * reply.trainRows + reply.canary.count * (flopsOf(server.current) + reply.flopsPerRow);
        changes.push({ atRequest: start + BLOCK, kind: outcome.kind, policy: reply.policy ?? null, reason: reply.reason ?? reply.error?.message ?? null, canary: reply.canary ?? null, params: reply.params ?? null, flopsPerRequest: reply.flopsPerRow ?? null });
      }
    }
    const rollbacks = server.history().filter((e) => e.kind === 'rolledBack').map((e) => ({ version: e.version, serving: e.serving, reason: e.reason }));
    const final = server.current.counts();
    return { blocks, trainFlops: flops, changes, rollbacks, finalFlopsPerRequest: final.flops, finalParams: final.params, versions: server.version };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const auc = (blocks) => blocks.reduce((a, b) => a + b.accuracy, 0) / blocks.length;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const spread = (xs) => ({ min: Math.min(...xs), max: Math.max(...xs), std: Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2))), values: xs });

const perSeed = [];
for (const seed of SEEDS) {
  const stream = buildStream(seed);
  const started = performance.now();
  const staticArm = await runBaseline(seed, stream, false);
  const retrainArm = await runBaseline(seed, stream, true);
  const onlineArm = await runOnline(seed, stream);
  const result = {
    seed,
    seconds: (performance.now() - started) / 1000,
    auc: { static: auc(staticArm.blocks), retrain: auc(retrainArm.blocks), online: auc(onlineArm.blocks) },
    trainFlops: { retrain: retrainArm.trainFlops, online: onlineArm.trainFlops },
    finalFlopsPerRequest: { static: staticArm.finalFlopsPerRequest, retrain: retrainArm.finalFlopsPerRequest, online: onlineArm.finalFlopsPerRequest },
    finalParams: { static: staticArm.finalParams, retrain: retrainArm.finalParams, online: onlineArm.finalParams },
    arms: { static: staticArm, retrain: retrainArm, online: onlineArm },
  };
  perSeed.push(result);
  console.log(`seed ${seed}: auc static ${result.auc.static.toFixed(4)} retrain ${result.auc.retrain.toFixed(4)} online ${result.auc.online.toFixed(4)}; train FLOPs online/retrain ${(onlineArm.trainFlops / retrainArm.trainFlops).toFixed(3)} (${result.seconds.toFixed(0)} s)`);
}

const loadFile = here('./results/online-load.json');
const load = existsSync(loadFile) ? JSON.parse(readFileSync(loadFile, 'utf8')) : undefined;
const aucs = (arm) => perSeed.map((s) => s.auc[arm]);
writeResult(
  'online-drift',
  {
    auc_online: mean(aucs('online')),
    auc_static: mean(aucs('static')),
    auc_retrain: mean(aucs('retrain')),
    seeds: SEEDS.length,
    online_above_both_on_every_seed: perSeed.every((s) => s.auc.online > s.auc.static && s.auc.online > s.auc.retrain),
    train_flops_online_over_retrain: mean(perSeed.map((s) => s.trainFlops.online / s.trainFlops.retrain)),
    final_flops_online_over_static: mean(perSeed.map((s) => s.finalFlopsPerRequest.online / s.finalFlopsPerRequest.static)),
    failed_requests: load?.summary.failed_requests ?? null,
    swaps: load?.summary.swaps ?? null,
    p99_swap_over_p99_steady: load?.summary.p99_swap_over_p99_steady ?? null,
  },
  {
    settings: { seeds: SEEDS, phase: PHASE, drift: DRIFT, pretrain: PRETRAIN, labelFraction: LABEL_FRACTION, block: BLOCK, chunk: CHUNK, buffer: BUFFER, retrainSteps: RETRAIN_STEPS, onlineSteps: ONLINE_STEPS, batch: BATCH, lr: LR, backend: 'wasm (1 thread)' },
    spread: { online: spread(aucs('online')), static: spread(aucs('static')), retrain: spread(aucs('retrain')) },
    loadTest: load ? { source: 'bench/results/online-load.json', date: load.date, summary: load.summary } : { source: 'bench/results/online-load.json (absent: run pnpm bench online-load)' },
    perSeed,
  },
);
