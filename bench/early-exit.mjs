// early-exit: B-LeNet on MNIST (BranchyNet, Teerapittayanon et al. 2016). A LeNet-5-style conv
// net with one cheap early branch after the first conv (pool -> flatten -> dense 10), trained
// jointly (exit weights [1, 0.3]); the entropy threshold is calibrated on 1,000 held-out
// training digits to lose at most `--max-drop` accuracy; then batched inference on the 2,000
// test digits with per-sample exit (exited rows leave the batch) is timed against the full
// network (trunk only) in the same run.
//   speedup = full-network ms per digit / early-exit ms per digit (median of repeats);
//   exit_rate = test digits leaving at the branch; accuracy_drop = full acc - early-exit acc (points).
//   pnpm bench early-exit [--backend wasm|cpu] [--epochs 5] [--batch 500] [--max-drop 0.002] [--seeds 0,1,2]
// Each seed initialises the network differently (data order is fixed); the summary holds the mean
// over seeds, details.perSeed every seed's figures and details.spread their min/max/std.
// Reference: BranchyNet Table I, B-LeNet on CPU: 94.3% exit at the branch, 5.4x speedup.
import { parseArgs } from 'node:util';
import { tf, Model, adam } from '@rs/core';
import { addExit, multiExitStep, calibrateThreshold, earlyExitPredict, exitOrder } from '@rs/dynamic';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult, timeIt } from './lib/results.mjs';
import { bLenetGraph } from './lib/b-lenet.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    epochs: { type: 'string', default: '5' },
    batch: { type: 'string', default: '500' },
    'max-drop': { type: 'string', default: '0.002' },
    repeats: { type: 'string', default: '7' },
    seeds: { type: 'string', default: '0,1,2' },
  },
});
const backend = await selectBackend(args.backend);
const started = performance.now();

const mnist = loadMnist();
const nTrain = 7000;
const images = (split, from, n) => tf.tensor4d(mnist[split].x.subarray(from * 784, (from + n) * 784), [n, 28, 28, 1]);
const trainX = images('train', 0, nTrain);
const trainY = tf.tensor1d(mnist.train.y.slice(0, nTrain), 'int32');
const valX = images('train', nTrain, 1000);
const valY = mnist.train.y.slice(nTrain, nTrain + 1000);
const testX = images('test', 0, mnist.test.count);
const testY = mnist.test.y;

const batch = Number(args.batch);
const n = testX.shape[0];
const slices = [];
for (let s = 0; s < n; s += batch) slices.push(tf.slice(testX, s, Math.min(batch, n - s)));
async function runSeed(seed) {
  const model = Model.create(bLenetGraph(), { seed });
  const exitId = addExit(model, { at: 'pool1', classes: 10, reason: 'B-LeNet branch after conv1' });
  const [early, final] = exitOrder(model);
  const counts = model.counts();
  const flopsOf = (ids) => counts.perNode.filter((c) => ids.includes(c.node ?? c.id)).reduce((s, c) => s + c.flops, 0);

  const optimizer = adam({ learningRate: 3e-3 });
  const batchSize = 64;
  let order = Array.from({ length: nTrain }, (_, i) => i);
  for (let epoch = 0; epoch < Number(args.epochs); epoch++) {
    let s = 1 + epoch * 7919;
    order = order.map((v) => [((s = (s * 48271) % 2147483647)), v]).sort((a, b) => a[0] - b[0]).map((p) => p[1]);
    let loss = 0;
    for (let b = 0; b + batchSize <= nTrain; b += batchSize) {
      const idx = tf.tensor1d(order.slice(b, b + batchSize), 'int32');
      const xb = tf.gather(trainX, idx);
      const yb = tf.gather(trainY, idx);
      loss += multiExitStep(model, xb, yb, optimizer, [1, 0.3]);
      tf.dispose([idx, xb, yb]);
    }
    console.log(`epoch ${epoch + 1}: joint loss ${(loss / Math.floor(nTrain / batchSize)).toFixed(4)} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }

  const cal = calibrateThreshold(model, valX, valY, { rule: 'entropy', maxDrop: Number(args['max-drop']) });
  console.log(`calibrated entropy threshold ${cal.threshold.toPrecision(4)} on 1,000 validation digits: exit ${(100 * cal.earlyExitRate).toFixed(1)}%, accuracy ${(100 * cal.accuracy).toFixed(2)}% (full ${(100 * cal.fullAccuracy).toFixed(2)}%)`);

  const accuracyOf = (logits) => {
    const t = tf.argMax(logits, -1);
    const p = t.dataSync();
    t.dispose();
    return p.reduce((a, v, i) => a + (v === testY[i] ? 1 : 0), 0) / n;
  };
  function runFull() {
    const parts = slices.map((xs) => model.apply(xs, { targets: [final] }));
    const out = tf.concat(parts, 0);
    tf.dispose(parts);
    return out;
  }
  function runEarly(threshold) {
    const parts = slices.map((xs) => earlyExitPredict(model, xs, { rule: 'entropy', thresholds: threshold }));
    const out = tf.concat(parts.map((p) => p.logits), 0);
    const exits = parts.flatMap((p) => [...p.exitIndex]);
    tf.dispose(parts.map((p) => p.logits));
    return { out, exits };
  }
  const timed = async (fn, repeats) => timeIt(() => { const r = fn(); (r.out ?? r).dataSync(); tf.dispose(r.out ?? r); }, { warmup: 2, repeats });

  const fullOut = runFull();
  const fullAccuracy = accuracyOf(fullOut);
  fullOut.dispose();
  const tensorsBefore = tf.memory().numTensors;
  const { out: earlyOut, exits } = runEarly(cal.threshold);
  const accuracy = accuracyOf(earlyOut);
  earlyOut.dispose();
  const exitRate = exits.filter((e) => e === 0).length / n;
  if (tf.memory().numTensors !== tensorsBefore) throw new Error(`early-exit inference leaked ${tf.memory().numTensors - tensorsBefore} tensors`);

  // Alternate the two measurements so background load hits both alike.
  const repeats = Number(args.repeats);
  const fullTimes = [];
  const earlyTimes = [];
  for (let round = 0; round < 3; round++) {
    fullTimes.push((await timed(runFull, repeats)).median);
    earlyTimes.push((await timed(() => runEarly(cal.threshold), repeats)).median);
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const fullMs = median(fullTimes) / n;
  const earlyMs = median(earlyTimes) / n;

  // The accuracy-latency curve over thresholds (quantiles of the calibration sweep).
  const curve = [];
  const picks = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1].map((q) => cal.curve[Math.round(q * (cal.curve.length - 1))].threshold);
  for (const threshold of [...new Set([...picks, cal.threshold])].sort((a, b) => a - b)) {
    const r = runEarly(threshold);
    const point = { threshold, accuracy: accuracyOf(r.out), exitRate: r.exits.filter((e) => e === 0).length / n };
    r.out.dispose();
    point.msPerDigit = (await timed(() => runEarly(threshold), 3)).median / n;
    point.speedup = fullMs / point.msPerDigit;
    curve.push(point);
    console.log(`threshold ${threshold.toPrecision(3)}: exit ${(100 * point.exitRate).toFixed(1)}%, accuracy ${(100 * point.accuracy).toFixed(2)}%, ${(1000 * point.msPerDigit).toFixed(1)} us/digit (${point.speedup.toFixed(2)}x)`);
  }

  const trunkNodes = ['conv2', 'relu2', 'pool2', 'conv3', 'relu3', 'flatten', 'fc1', 'relu4', 'fc2'];
  const branchNodes = model.graph.nodes.filter((nd) => nd.id.startsWith(`${exitId}`)).map((nd) => nd.id);
  const result = {
    summary: {
      speedup: fullMs / earlyMs,
      exit_rate: exitRate,
      // From digit counts (both accuracies are hits / n), so 6 digits of 2,000 print as 0.3, not 0.30000000000000027.
      accuracy_drop: (100 * Math.round(n * (fullAccuracy - accuracy))) / n,
      accuracy: 100 * accuracy,
      full_accuracy: 100 * fullAccuracy,
      threshold: cal.threshold,
      full_us_per_digit: 1000 * fullMs,
      early_us_per_digit: 1000 * earlyMs,
    },
    details: {
      reference: 'BranchyNet (Teerapittayanon et al. 2016) Table I, B-LeNet on CPU: 94.3% exit at the branch, 5.4x speedup.',
      setup: { train: nTrain, validation: 1000, test: n, epochs: Number(args.epochs), batchSize, exitWeights: [1, 0.3], inferenceBatch: batch, rule: 'entropy', maxDrop: Number(args['max-drop']) },
      flops: { beforeBranch: flopsOf(['conv1', 'relu1', 'pool1']), branch: flopsOf(branchNodes), afterBranch: flopsOf(trunkNodes), total: counts.flops },
      calibration: { threshold: cal.threshold, validationExitRate: cal.earlyExitRate, validationAccuracy: cal.accuracy, validationFullAccuracy: cal.fullAccuracy },
      timingsMs: { full: fullTimes, early: earlyTimes, note: 'median over repeats of all test digits, 3 alternating rounds' },
      curve,
      exits: { early, final },
      seconds: (performance.now() - started) / 1000,
    },
  };
  model.dispose();
  return result;
}

const seeds = args.seeds.split(',').map(Number);
const perSeed = [];
for (const seed of seeds) {
  console.log(`--- seed ${seed}`);
  perSeed.push({ seed, ...(await runSeed(seed)) });
}
const keys = Object.keys(perSeed[0].summary);
const mean = (xs) => xs.reduce((a, v) => a + v, 0) / xs.length;
const summary = Object.fromEntries(keys.map((k) => [k, mean(perSeed.map((r) => r.summary[k]))]));
const spread = Object.fromEntries(
  keys.map((k) => {
    const xs = perSeed.map((r) => r.summary[k]);
    const m = mean(xs);
    return [k, { min: Math.min(...xs), max: Math.max(...xs), std: Math.sqrt(xs.reduce((a, v) => a + (v - m) ** 2, 0) / Math.max(1, xs.length - 1)), values: xs }];
  }),
);
writeResult('early-exit', { ...summary, seeds: seeds.length, backend }, { seeds, spread, perSeed: perSeed.map((r) => ({ seed: r.seed, summary: r.summary, ...r.details })) });
tf.dispose([trainX, trainY, valX, testX, ...slices]);
if (backend === 'wasm') tf.removeBackend('wasm');
