// vs-pytorch: rs on @rs/backend-native and @rs/backend-wasm against PyTorch (and numpy, ONNX
// Runtime for inference) on the same machine, interleaved in one run: each round runs every
// workload on every contender in turn (ours native, ours wasm, PyTorch, ...), so that background
// load hits all alike. Reported: medians over all rounds, and ratios (ours / theirs for times;
// throughput ratios where named so).
//
// The peer is PyTorch from Debian in its tuned configuration (OpenMP OpenBLAS, glibc's malloc
// thresholds raised; PyTorch exactly as apt leaves it runs on reference BLAS and is slower):
//   apt-get install -y python3-torch python3-numpy libopenblas0 libopenblas0-openmp
// It runs in a worker process (bench/lib/torch-peer.py) that times its own calls.
//   pnpm bench vs-pytorch [--rounds 5] [--threads 2]
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { tf, Model, lenet300100, charTransformer, trainStep, adam, softmaxCrossEntropy } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { install as installNative } from '@rs/backend-native';
import { pruneUnits, pruneWeights } from '@rs/prune';
import { toOnnx } from '@rs/onnx';
import ort from 'onnxruntime-node';
import { writeResult } from './lib/results.mjs';
import { startTorchPeer } from './lib/torch-peer.mjs';

// Settings, declared before any reported run (see the commit that introduced them).
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, threads: { type: 'string', default: '2' }, seed: { type: 'string', default: '0' } } });
const SETTINGS = {
  rounds: Number(args.rounds),
  threads: Number(args.threads),
  seed: Number(args.seed),
  lenetStep: { batch: 256, warmup: 3, repeats: 10 },
  transformerStep: { batch: 16, context: 64, dim: 128, heads: 4, layers: 2, vocab: 83, warmup: 1, repeats: 3 },
  infer: { batches: [256, 1], warmup: 5, repeats: { 256: 20, 1: 200 } },
  gemm: { n: 1024, warmup: 1, repeats: 5 },
};
const torchPeer = startTorchPeer('vs-pytorch', SETTINGS.threads);
const { ask } = torchPeer;
const PEER_ENV = torchPeer.env;
const PYTHON = torchPeer.python;

const started = performance.now();
const loadBefore = loadavg();
await installCpu({ activate: false });
const nativeInfo = await installNative({ threads: SETTINGS.threads, activate: false });
const wasmInfo = await installWasm({ threads: SETTINGS.threads, activate: false });
// Both initialised up front (wasm initialises asynchronously); the blocks switch synchronously.
await tf.setBackend('wasm');
await tf.setBackend('native');
const peerInfo = await ask({ op: 'versions' });

/** Times `body` (ms per call) as the bench's other timers do. */
function timeCalls(body, warmup, repeats) {
  for (let i = 0; i < warmup; i++) body();
  const ms = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    body();
    ms.push(performance.now() - t);
  }
  return ms;
}
const asyncTimeCalls = async (body, warmup, repeats) => {
  for (let i = 0; i < warmup; i++) await body();
  const ms = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await body();
    ms.push(performance.now() - t);
  }
  return ms;
};
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// --- Contenders: each one a function that returns per-call times for one block. ---------------
const seed = SETTINGS.seed;
const onBackend = (backend, make) => {
  tf.setBackend(backend);
  const made = make();
  return (warmup, repeats) => {
    tf.setBackend(backend);
    return timeCalls(made, warmup, repeats);
  };
};
const lenetStep = (backend) =>
  onBackend(backend, () => {
    const x = tf.randomUniform([SETTINGS.lenetStep.batch, 784], 0, 1, 'float32', seed);
    const y = tf.randomUniformInt([SETTINGS.lenetStep.batch], 0, 10, seed + 1);
    const model = Model.create(lenet300100(), { seed });
    const optimizer = adam({ learningRate: 1e-3 });
    return () => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
  });
const T = SETTINGS.transformerStep;
const transformerStep = (backend) =>
  onBackend(backend, () => {
    const x = tf.randomUniformInt([T.batch, T.context], 0, T.vocab, seed);
    const y = tf.randomUniformInt([T.batch, T.context], 0, T.vocab, seed + 1);
    const model = Model.create(charTransformer({ vocabSize: T.vocab, context: T.context, dim: T.dim, heads: T.heads, layers: T.layers }), { seed });
    const optimizer = adam({ learningRate: 3e-3 });
    return () => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
  });
const hostInput = (b) => Float32Array.from({ length: b * 784 }, (_, i) => ((i * 2654435761) % 1000) / 1000);
/** Inference from a host Float32Array to host logits, as ORT and PyTorch do. */
const inferWith = (backend, model, b) => {
  const input = hostInput(b);
  return onBackend(backend, () => () => {
    const x = tf.tensor2d(input, [b, 784]);
    const y = model.apply(x);
    y.dataSync();
    tf.dispose([x, y]);
  });
};
const gemm = (backend) =>
  onBackend(backend, () => {
    const a = tf.randomUniform([SETTINGS.gemm.n, SETTINGS.gemm.n], 0, 1, 'float32', seed);
    const b = tf.randomUniform([SETTINGS.gemm.n, SETTINGS.gemm.n], 0, 1, 'float32', seed + 1);
    return () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
  });
const torchBlock = (what, extra) => torchPeer.block(what, { seed, ...extra });

// Models for inference, pruning and masks: LeNet-300-100 (random weights: speed only).
const models = {};
for (const backend of ['native', 'wasm']) {
  tf.setBackend(backend);
  const dense = Model.create(lenet300100(), { seed });
  const pruned = Model.create(lenet300100(), { seed });
  pruneUnits(pruned, { fraction: 0.5, score: 'l1', groups: ['fc1', 'fc2'], reason: 'vs-pytorch: half-width LeNet' });
  // The same pruned weights in fresh, contiguous tensors: what an edit should cost nothing over.
  const fresh = Model.create(pruned.graph, { params: Object.fromEntries(pruned.paramKeys().map((k) => [k, tf.clone(pruned.param(k).value)])) });
  const masked = Model.create(lenet300100(), { seed });
  pruneWeights(masked, { sparsity: 0.5, score: 'l1', scope: 'layer', reason: 'vs-pytorch: masks' });
  const unmasked = Model.create(masked.graph, { params: Object.fromEntries(masked.paramKeys().map((k) => [k, tf.clone(masked.param(k).value)])) });
  models[backend] = { dense, pruned, fresh, masked, unmasked };
}
tf.setBackend('native');
const onnxBytes = toOnnx(models.native.dense, { name: 'lenet300100' });
const session = await ort.InferenceSession.create(onnxBytes, { executionProviders: ['cpu'], intraOpNumThreads: SETTINGS.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const outputName = session.outputNames[0];

const workloads = {
  lenet_step: { warmup: SETTINGS.lenetStep.warmup, repeats: SETTINGS.lenetStep.repeats, contenders: { native: lenetStep('native'), wasm: lenetStep('wasm'), torch: await torchBlock('lenet_step', { batch: SETTINGS.lenetStep.batch }) } },
  transformer_step: {
    warmup: T.warmup,
    repeats: T.repeats,
    contenders: { native: transformerStep('native'), wasm: transformerStep('wasm'), torch: await torchBlock('transformer_step', { vocab: T.vocab, context: T.context, dim: T.dim, heads: T.heads, layers: T.layers, batch: T.batch }) },
  },
  gemm: { warmup: SETTINGS.gemm.warmup, repeats: SETTINGS.gemm.repeats, contenders: { native: gemm('native'), wasm: gemm('wasm'), torch: await torchBlock('torch_gemm', { n: SETTINGS.gemm.n }), numpy: await torchBlock('numpy_gemm', { n: SETTINGS.gemm.n }) } },
};
for (const b of SETTINGS.infer.batches) {
  const input = hostInput(b);
  const contenders = { torch: await torchBlock('lenet_infer', { batch: b }) };
  for (const backend of ['native', 'wasm']) {
    for (const [variant, model] of Object.entries(models[backend])) {
      if (b !== 256 && variant !== 'dense') continue;
      contenders[variant === 'dense' ? backend : `${backend}_${variant}`] = inferWith(backend, model, b);
    }
  }
  contenders.ort = (warmup, repeats) => asyncTimeCalls(async () => (await session.run({ x: new ort.Tensor('float32', input, [b, 784]) }))[outputName].data, warmup, repeats);
  workloads[`lenet_infer_b${b}`] = { warmup: SETTINGS.infer.warmup, repeats: SETTINGS.infer.repeats[b], contenders };
}

// --- The interleaved rounds. ------------------------------------------------------------------
const samples = {};
// Counted from the end of the first round: the first training steps create Adam's slots.
let tensorsAfterFirstRound = 0;
for (let round = 0; round < SETTINGS.rounds; round++) {
  for (const [name, w] of Object.entries(workloads)) {
    samples[name] ??= {};
    for (const [who, block] of Object.entries(w.contenders)) {
      const ms = await block(round === 0 ? w.warmup : 1, w.repeats);
      (samples[name][who] ??= []).push(...ms);
    }
  }
  if (round === 0) tensorsAfterFirstRound = tf.memory().numTensors;
  console.log(`round ${round + 1}/${SETTINGS.rounds} done (${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
torchPeer.close();
const leaked = tf.memory().numTensors - tensorsAfterFirstRound;

const med = {};
for (const [name, by] of Object.entries(samples)) med[name] = Object.fromEntries(Object.entries(by).map(([who, ms]) => [who, median(ms)]));
const gflops = (ms) => (2 * SETTINGS.gemm.n ** 3) / (ms * 1e6);
const flops = (h1, h2) => 784 * h1 + h1 * h2 + h2 * 10;
const flopRatio = flops(300, 100) / flops(150, 50);
const i256 = med.lenet_infer_b256;
const summary = {
  native_over_torch_lenet_step: med.lenet_step.native / med.lenet_step.torch,
  native_over_torch_transformer_step: med.transformer_step.native / med.transformer_step.torch,
  native_gemm_over_numpy: gflops(med.gemm.native) / gflops(med.gemm.numpy),
  native_infer_over_ort: i256.ort / i256.native,
  native_b1_latency_over_ort: med.lenet_infer_b1.native / med.lenet_infer_b1.ort,
  wasm_over_torch_transformer_step: med.transformer_step.wasm / med.transformer_step.torch,
  wasm_over_torch_lenet_step: med.lenet_step.wasm / med.lenet_step.torch,
  native_pruned_speedup_over_flop_ratio: i256.native / i256.native_pruned / flopRatio,
  wasm_pruned_speedup_over_flop_ratio: i256.wasm / i256.wasm_pruned / flopRatio,
  native_mask_overhead: i256.native_masked / i256.native_unmasked - 1,
  wasm_mask_overhead: i256.wasm_masked / i256.wasm_unmasked - 1,
  load_avg_1m: loadavg()[0],
};
writeResult('vs-pytorch', summary, {
  settings: SETTINGS,
  mediansMs: med,
  gemmGflops: Object.fromEntries(Object.entries(med.gemm).map(([who, ms]) => [who, gflops(ms)])),
  inferDigitsPerSecond: Object.fromEntries(Object.entries(i256).map(([who, ms]) => [who, (256 * 1000) / ms])),
  pruning: { flopRatio, note: 'half-width LeNet (pruneUnits 0.5 of fc1, fc2): speedup = dense ms / pruned ms at batch 256 inference; *_fresh: the same pruned weights copied into fresh tensors' },
  masks: 'masked: pruneWeights 50% (masks applied in every forward); unmasked: the same weights in a model without masks',
  peer: { ...peerInfo, env: PEER_ENV, python: PYTHON },
  // OpenBLAS's kernel set as the machine's environment pins it (PyTorch, numpy and our BLAS calls alike).
  openblasCoretype: process.env.OPENBLAS_CORETYPE ?? null,
  ours: { native: nativeInfo.capabilities, wasm: { threads: wasmInfo.capabilities?.threads } },
  ort: { version: ort.env.versions?.common ?? 'unknown', intraOpNumThreads: SETTINGS.threads },
  leakedTensors: leaked,
  leakNote: 'tensors gained between the end of the first round and the end of the last (every workload ran in between)',
  loadavgBefore: loadBefore,
  seconds: (performance.now() - started) / 1000,
  samplesMs: samples,
  note: 'Times are medians of all per-call samples over the interleaved rounds. Ratios: *_over_torch = our time / PyTorch time (lower is better); native_gemm_over_numpy = our GFLOP/s / numpy GFLOP/s; native_infer_over_ort = our digits/s / ORT digits/s at batch 256; native_b1_latency_over_ort = our ms / ORT ms at batch 1. Both sides of inference go from a host Float32Array to host logits. PyTorch times are taken inside its worker (no pipe traffic). The PyTorch transformer mirrors charTransformer (pre-LN blocks, causal 4-head attention with biases, tanh GELU FFN of width 4x, final LN and head); initialisation differs.',
});
process.exit(0);
