// Attention-head pruning on the Moby Dick character transformer (2 layers, width 128, 4 heads,
// context 64), in the manner of Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"):
// train (a fixed number of steps, or for a time budget), score each head on held-out text through
// core's unit groups, then remove heads from the least important up, without fine-tuning, and
// report validation loss against heads removed. Three scores:
//   `gate` (the summary): Michel et al.'s importance, the expected absolute derivative of the loss
//     with respect to a gate on the head's output, I_h = E |dL/d xi_h|. At xi_h = 1 that
//     derivative is the sum of w * dL/dw over the head's rows of the output projection
//     (@rs/prune's `gateImportance`); the expectation is taken over mini-batches of
//     `--score-batch` windows (the absolute value per mini-batch, then the mean).
//   `taylorGroup`: |sum of w * dL/dw| over the head's whole unit group (q, k, v columns and
//     output rows), on one batch of all the scoring windows.
//   `taylor`: sum of |w * dL/dw| over the same group.
// The control is `--random-orders` random removal orders; at every count of heads removed the
// result holds their mean loss and how many of them the gate order beats. Each layer keeps at
// least one head. Scoring and measuring use different validation windows.
// Writes bench/results/prune-heads-<backend>.json (`pnpm bench prune-heads` turns it into the
// benchmark's result, `pnpm bench seeds prune-heads` runs several seeds).
//   node examples/prune/heads.mjs [--backend cpu|wasm|native] [--steps N | --minutes 4] [--seed 0]
//     [--dim 128] [--context 64] [--random-orders 20] [--score-batch 8] [--model FILE]
// Default backend: wasm when @rs/backend-wasm can be imported, else cpu (far slower: use a small
// model there, e.g. --dim 64 --context 32).
import { parseArgs } from 'node:util';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { Model, charTransformer, trainStep, adam, softmaxCrossEntropy, tf, saveToBuffer, loadFromBuffer, createRng, save, load } from '@rs/core';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { groupUnitScores, gateImportance, taylor, taylorGroup, removeUnits } from '@rs/prune';
import { selectBackend, releaseBackend } from './backend.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    minutes: { type: 'string', default: '4' },
    steps: { type: 'string' },
    'random-orders': { type: 'string', default: '20' },
    'score-batch': { type: 'string', default: '8' },
    seed: { type: 'string', default: '0' },
    dim: { type: 'string', default: '128' },
    context: { type: 'string', default: '64' },
    model: { type: 'string' },
  },
});
const positiveInt = (name) => {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${args[name]}`);
  return value;
};
const steps = args.steps === undefined ? undefined : positiveInt('steps');
const randomOrders = positiveInt('random-orders');
const scoreBatch = positiveInt('score-batch');
const seed = Number(args.seed);
const backend = await selectBackend(args.backend);
const corpus = loadMobyDick();
const context = Number(args.context);
const dim = Number(args.dim);
// --model FILE: reuse a trained model saved there (or save the one trained here), so scoring
// can be rerun without training again.
const reuse = args.model && existsSync(args.model);
const model = reuse ? await load(args.model) : Model.create(charTransformer({ vocabSize: corpus.vocab.length, context, dim, heads: 4, layers: 2 }), { seed });
let step = 0;
let trainedMinutes = 0;
if (!reuse) {
  const batches = charBatches(corpus.train, { context, batchSize: 16, seed });
  const optimizer = adam({ learningRate: 3e-3 });
  const started = performance.now();
  while (steps === undefined ? performance.now() - started < Number(args.minutes) * 60_000 : step < steps) {
    const b = batches.sample(++step);
    const x = tf.tensor2d(b.x, [16, context], 'int32');
    const y = tf.tensor2d(b.y, [16, context], 'int32');
    trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    tf.dispose([x, y]);
  }
  trainedMinutes = (performance.now() - started) / 60_000;
  if (args.model) {
    await save(model, args.model);
    writeFileSync(`${args.model}.json`, JSON.stringify({ steps: step, minutes: trainedMinutes, backend }));
  }
}
const training = reuse && existsSync(`${args.model}.json`) ? JSON.parse(readFileSync(`${args.model}.json`, 'utf8')) : { steps: step, minutes: trainedMinutes, budget: steps === undefined ? `${args.minutes} minutes` : `${steps} steps`, backend };
// Held-out text: windows for scoring and different windows for measuring.
const windows = (seed) => {
  const b = charBatches(corpus.validation, { context, batchSize: 128, seed }).sample(0);
  return { x: tf.tensor2d(b.x, [128, context], 'int32'), y: tf.tensor2d(b.y, [128, context], 'int32') };
};
const scoring = windows(11);
// The scoring windows again, cut into mini-batches for the gate score's expectation.
const miniBatches = [];
for (let at = 0; at < 128; at += scoreBatch) {
  const n = Math.min(scoreBatch, 128 - at);
  miniBatches.push({ x: tf.slice(scoring.x, [at, 0], [n, context]), y: tf.slice(scoring.y, [at, 0], [n, context]) });
}
const measuring = windows(12);
const loss = (m) => tf.tidy(() => softmaxCrossEntropy(m.predict(measuring.x, { batchSize: 32 }), measuring.y).dataSync()[0]);
const base = loss(model);
console.log(`backend ${backend}: ${reuse ? `model from ${args.model}, ` : ''}trained ${training.steps} steps in ${Number(training.minutes).toFixed(1)} min (${training.backend}): validation loss ${base.toFixed(3)} nats/char`);

const headGroups = model.groups().filter((g) => g.id.endsWith(':heads'));
/** Every head with its score, from a map of group id to per-unit scores. */
const asHeads = (scores) => headGroups.flatMap((g) => [...scores.get(g.id)].map((value, unit) => ({ group: g.id, unit, value })));
const headsOf = (score) => asHeads(groupUnitScores(model, headGroups, score, { batches: [scoring], loss: softmaxCrossEntropy }));
// The gate score (@rs/prune's gateImportance): each head's rows of the output projection, |sum
// w * dL/dw| per mini-batch, averaged over the mini-batches.
const rankings = { gate: asHeads(gateImportance(model, headGroups, { batches: miniBatches, loss: softmaxCrossEntropy })), taylorGroup: headsOf(taylorGroup), taylor: headsOf(taylor) };
const heads = rankings.gate;
const rng = createRng(1000 + seed);
const shuffled = () => [...heads].map((h) => ({ h, r: rng.next() })).sort((a, b) => a.r - b.r).map((e) => e.h);
const saved = saveToBuffer(model);

// Each layer keeps at least one head: a head whose removal would empty its layer is skipped.
function removable(order) {
  const left = new Map(headGroups.map((g) => [g.id, g.size]));
  return order.filter((h) => (left.get(h.group) > 1 ? (left.set(h.group, left.get(h.group) - 1), true) : false));
}

function curve(order) {
  const points = [{ removed: 0, loss: base, params: model.counts().params }];
  const sequence = removable(order);
  for (let k = 1; k <= sequence.length; k++) {
    const chosen = sequence.slice(0, k);
    const perGroup = {};
    for (const h of chosen) (perGroup[h.group] ??= []).push(h.unit);
    const copy = loadFromBuffer(saved);
    removeUnits(copy, perGroup, { reason: `remove the ${k} heads first in the order` });
    points.push({ removed: k, heads: chosen.map((h) => `${h.group}#${h.unit}`), loss: loss(copy), params: copy.counts().params });
    copy.dispose();
  }
  return points;
}
const byValue = (list) => [...list].sort((a, b) => a.value - b.value);
const curves = { gate: curve(byValue(rankings.gate)), taylorGroup: curve(byValue(rankings.taylorGroup)), taylor: curve(byValue(rankings.taylor)) };
const randomCurves = Array.from({ length: randomOrders }, () => curve(shuffled()));
// Per count of heads removed: the random orders' mean loss, and how many of them the gate order beats.
const counts = curves.gate.map((point, k) => {
  const losses = randomCurves.map((c) => c[k].loss);
  return { removed: k, gate: point.loss, taylorGroup: curves.taylorGroup[k].loss, taylor: curves.taylor[k].loss, randomMean: losses.reduce((a, b) => a + b, 0) / losses.length, randomMin: Math.min(...losses), randomMax: Math.max(...losses), gateBeats: losses.filter((l) => point.loss < l).length };
});
console.log(`heads removed | validation loss: gate order | taylorGroup order | taylor order | random orders: mean (min-max), beaten by gate of ${randomOrders}`);
for (const c of counts) {
  console.log(`${String(c.removed).padStart(13)} | ${c.gate.toFixed(3).padStart(10)} | ${c.taylorGroup.toFixed(3).padStart(17)} | ${c.taylor.toFixed(3).padStart(12)} | ${c.randomMean.toFixed(3)} (${c.randomMin.toFixed(3)}-${c.randomMax.toFixed(3)}), ${c.gateBeats}`);
}
const halfway = heads.length / 2;
const half = counts[halfway];
const later = counts.slice(1);
const below = later.filter((c) => c.gate < c.randomMean).length;
console.log(`removing half the heads (${halfway} of ${heads.length}) by gate importance: ${base.toFixed(3)} -> ${half.gate.toFixed(3)} nats/char (+${(half.gate - base).toFixed(3)}); random orders ${half.randomMean.toFixed(3)} on the mean; gate order below the random mean at ${below} of ${later.length} counts`);
writeFileSync(new URL(`../../bench/results/prune-heads-${backend}.json`, import.meta.url), JSON.stringify({
  name: `prune-heads-${backend}`, date: new Date().toISOString(), backend, seed, training, config: { dim, context, heads: 4, layers: 2, randomOrders, scoreBatch }, base,
  summary: {
    base_loss: base,
    half_heads_removed_loss: half.gate,
    increase: half.gate - base,
    random_half_loss: half.randomMean,
    taylor_group_half_loss: half.taylorGroup,
    taylor_half_loss: half.taylor,
    gate_beats_random_mean_every_count: below === later.length,
    counts_gate_below_random_mean: below,
  },
  counts, headScores: rankings, curves, randomCurves: randomCurves.map((c) => c.map((p) => ({ removed: p.removed, heads: p.heads, loss: p.loss }))),
}, null, 2) + '\n');
tf.dispose([scoring.x, scoring.y, measuring.x, measuring.y, ...miniBatches.flatMap((b) => [b.x, b.y])]);
model.dispose();
releaseBackend();
