// cnn-step: a convolutional training step (@rs/core's lenet5: conv 5x5x6 'same', max pool,
// conv 5x5x16, max pool, dense 400-120-84-10; Adam 1e-3, softmax cross-entropy, batch 64) on
// @rs/backend-native and @rs/backend-wasm against PyTorch on the same machine, interleaved in
// one run (each round runs native, wasm and PyTorch in turn, so background load hits all alike).
// The peer is Debian's PyTorch in its tuned configuration (bench/lib/torch-peer.mjs).
//
// Settings, declared before the reported run (see the commit that introduced them): 3 seeds
// (0, 1, 2: initial weights and the random batch); per seed 5 rounds of 10 timed steps per
// contender after 3 warm-up steps in the first round; 2 threads each. Reported per seed: the
// median over its 50 samples per contender, and native / PyTorch, wasm / PyTorch; over seeds:
// mean, standard deviation, min, max and the per-seed values; the load average before and after;
// tensors leaked over the run.
//   pnpm bench cnn-step
import { loadavg } from 'node:os';
import { tf, Model, lenet5, trainStep, adam, softmaxCrossEntropy } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { install as installNative } from '@rs/backend-native';
import { writeResult } from './lib/results.mjs';
import { startTorchPeer } from './lib/torch-peer.mjs';

export const SETTINGS = { seeds: [0, 1, 2], rounds: 5, threads: 2, batch: 64, warmup: 3, repeats: 10, learningRate: 1e-3 };

const started = performance.now();
const loadBefore = loadavg();
const peer = startTorchPeer('cnn-step', SETTINGS.threads);
await installCpu({ activate: false });
const nativeInfo = await installNative({ threads: SETTINGS.threads, activate: false });
const wasmInfo = await installWasm({ threads: SETTINGS.threads, activate: false });
await tf.setBackend('wasm');
await tf.setBackend('native');
const peerInfo = await peer.ask({ op: 'versions' });

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const mean = (a) => a.reduce((p, q) => p + q, 0) / a.length;
const spread = (a) => ({ mean: mean(a), std: Math.sqrt(mean(a.map((v) => (v - mean(a)) ** 2))), min: Math.min(...a), max: Math.max(...a), values: a });

/** A training step of lenet5 on `backend` for `seed`: returns a timer (warmup, repeats) => ms[] and a dispose. */
function ourStep(backend, seed) {
  tf.setBackend(backend);
  const x = tf.randomUniform([SETTINGS.batch, 28, 28, 1], 0, 1, 'float32', seed);
  const y = tf.randomUniformInt([SETTINGS.batch], 0, 10, seed + 1);
  const model = Model.create(lenet5(), { seed });
  const optimizer = adam({ learningRate: SETTINGS.learningRate });
  const step = () => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
  const timer = (warmup, repeats) => {
    tf.setBackend(backend);
    for (let i = 0; i < warmup; i++) step();
    const ms = [];
    for (let i = 0; i < repeats; i++) {
      const t = performance.now();
      step();
      ms.push(performance.now() - t);
    }
    return ms;
  };
  return { timer, dispose: () => (tf.setBackend(backend), model.dispose(), tf.dispose([x, y])) };
}

const tensorsBefore = tf.memory().numTensors;
const perSeed = [];
for (const seed of SETTINGS.seeds) {
  const native = ourStep('native', seed);
  const wasm = ourStep('wasm', seed);
  const torch = await peer.block('lenet5_step', { seed, batch: SETTINGS.batch });
  const samples = { native: [], wasm: [], torch: [] };
  for (let round = 0; round < SETTINGS.rounds; round++) {
    const warmup = round === 0 ? SETTINGS.warmup : 0;
    samples.native.push(...native.timer(warmup, SETTINGS.repeats));
    samples.wasm.push(...wasm.timer(warmup, SETTINGS.repeats));
    samples.torch.push(...(await torch(warmup, SETTINGS.repeats)));
  }
  native.dispose();
  wasm.dispose();
  const med = Object.fromEntries(Object.entries(samples).map(([who, ms]) => [who, median(ms)]));
  perSeed.push({ seed, medianMs: med, native_over_torch: med.native / med.torch, wasm_over_torch: med.wasm / med.torch, samplesMs: samples });
  console.log(`seed ${seed}: native ${med.native.toFixed(2)} ms, wasm ${med.wasm.toFixed(2)} ms, PyTorch ${med.torch.toFixed(2)} ms (${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
peer.close();
const leaked = tf.memory().numTensors - tensorsBefore;

const over = (key) => spread(perSeed.map((s) => s[key]));
const ms = (who) => spread(perSeed.map((s) => s.medianMs[who]));
writeResult(
  'cnn-step',
  {
    native_over_torch: mean(perSeed.map((s) => s.native_over_torch)),
    wasm_over_torch: mean(perSeed.map((s) => s.wasm_over_torch)),
    native_ms: ms('native').mean,
    wasm_ms: ms('wasm').mean,
    torch_ms: ms('torch').mean,
    seeds: SETTINGS.seeds.length,
    leaked_tensors: leaked,
    load_avg_1m: loadavg()[0],
  },
  {
    settings: SETTINGS,
    native_over_torch: over('native_over_torch'),
    wasm_over_torch: over('wasm_over_torch'),
    medianMs: { native: ms('native'), wasm: ms('wasm'), torch: ms('torch') },
    peer: { ...peerInfo, env: peer.env, python: peer.python },
    ours: { native: nativeInfo.capabilities, wasm: { threads: wasmInfo.capabilities?.threads } },
    loadavgBefore: loadBefore,
    seconds: (performance.now() - started) / 1000,
    perSeed,
    note: 'Ratios: our median step time / PyTorch median step time, per seed (lower is better). PyTorch times are taken inside its worker (no pipe traffic). The PyTorch model mirrors lenet5 (NCHW there, NHWC here); initialisation differs.',
  },
);
process.exit(0);
