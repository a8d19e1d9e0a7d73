// Attention-head pruning on the Moby Dick character transformer (2 layers, width 128, 4 heads,
// context 64), in the manner of Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"):
// train for a time budget, score each head on held-out text through core's unit groups (the
// head's q/k/v columns and output-projection rows), then remove heads from the least important
// up, without fine-tuning, and report validation loss against heads removed. Two scores:
// `taylorGroup` (|sum of w * dL/dw| over the head: the first-order loss change of removing it,
// close to Michel et al.'s |dL/d(head gate)|; the summary) and `taylor` (sum of |w * dL/dw|).
// A random removal order is the control. Each layer keeps at least one head. Scoring and
// measuring use different validation windows. Writes bench/results/prune-heads[-cpu].json.
//   node examples/prune/heads.mjs [--backend cpu|wasm] [--minutes 4] [--seed 0] [--dim 128] [--context 64]
// Default backend: wasm when @rs/backend-wasm can be imported, else cpu (far slower: use a small
// model there, e.g. --dim 64 --context 32).
import { parseArgs } from 'node:util';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { Model, charTransformer, trainStep, adam, softmaxCrossEntropy, tf, saveToBuffer, loadFromBuffer, createRng, save, load } from '@rs/core';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { groupUnitScores, taylor, taylorGroup, removeUnits } from '@rs/prune';
import { selectBackend, releaseBackend } from './backend.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    minutes: { type: 'string', default: '4' },
    seed: { type: 'string', default: '0' },
    dim: { type: 'string', default: '128' },
    context: { type: 'string', default: '64' },
    model: { type: 'string' },
  },
});
const backend = await selectBackend(args.backend);
const corpus = loadMobyDick();
const context = Number(args.context);
const dim = Number(args.dim);
// --model FILE: reuse a trained model saved there (or save the one trained here), so scoring
// can be rerun without training again.
const reuse = args.model && existsSync(args.model);
const model = reuse ? await load(args.model) : Model.create(charTransformer({ vocabSize: corpus.vocab.length, context, dim, heads: 4, layers: 2 }), { seed: Number(args.seed) });
let step = 0;
if (!reuse) {
  const batches = charBatches(corpus.train, { context, batchSize: 16, seed: Number(args.seed) });
  const optimizer = adam({ learningRate: 3e-3 });
  const started = performance.now();
  while (performance.now() - started < Number(args.minutes) * 60_000) {
    const b = batches.sample(++step);
    const x = tf.tensor2d(b.x, [16, context], 'int32');
    const y = tf.tensor2d(b.y, [16, context], 'int32');
    trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    tf.dispose([x, y]);
  }
  if (args.model) {
    await save(model, args.model);
    writeFileSync(`${args.model}.json`, JSON.stringify({ steps: step, minutes: Number(args.minutes), backend }));
  }
}
const training = reuse && existsSync(`${args.model}.json`) ? JSON.parse(readFileSync(`${args.model}.json`, 'utf8')) : { steps: step, minutes: Number(args.minutes), backend };
// Held-out text: windows for scoring and different windows for measuring.
const windows = (seed) => {
  const b = charBatches(corpus.validation, { context, batchSize: 128, seed }).sample(0);
  return { x: tf.tensor2d(b.x, [128, context], 'int32'), y: tf.tensor2d(b.y, [128, context], 'int32') };
};
const scoring = windows(11);
const measuring = windows(12);
const loss = (m) => tf.tidy(() => softmaxCrossEntropy(m.predict(measuring.x, { batchSize: 32 }), measuring.y).dataSync()[0]);
const base = loss(model);
console.log(`backend ${backend}: ${reuse ? `model from ${args.model}, ` : ''}trained ${training.steps} steps in ${training.minutes} min (${training.backend}): validation loss ${base.toFixed(3)} nats/char`);

const headGroups = model.groups().filter((g) => g.id.endsWith(':heads'));
const headsOf = (score) => {
  const scores = groupUnitScores(model, headGroups, score, { batches: [scoring], loss: softmaxCrossEntropy });
  return headGroups.flatMap((g) => [...(scores.get(g.id) ?? [])].map((value, unit) => ({ group: g.id, unit, value })));
};
const rankings = { taylorGroup: headsOf(taylorGroup), taylor: headsOf(taylor) };
const heads = rankings.taylorGroup;
const rng = createRng(5);
const randomOrder = [...heads].map((h) => ({ h, r: rng.next() })).sort((a, b) => a.r - b.r).map((e) => e.h);
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
const curves = { taylorGroup: curve(byValue(rankings.taylorGroup)), taylor: curve(byValue(rankings.taylor)), random: curve(randomOrder) };
console.log('heads removed | validation loss: taylorGroup order | taylor order | random order');
for (let i = 0; i < curves.random.length; i++) {
  console.log(`${String(i).padStart(13)} | ${curves.taylorGroup[i].loss.toFixed(3).padStart(33)} | ${curves.taylor[i].loss.toFixed(3).padStart(12)} | ${curves.random[i].loss.toFixed(3)}`);
}
const halfway = heads.length / 2;
const half = curves.taylorGroup[halfway];
console.log(`removing half the heads (${halfway} of ${heads.length}) by taylorGroup importance: ${base.toFixed(3)} -> ${half.loss.toFixed(3)} nats/char (+${(half.loss - base).toFixed(3)}); taylor order ${curves.taylor[halfway].loss.toFixed(3)}; random order ${curves.random[halfway].loss.toFixed(3)}`);
const name = backend === 'wasm' ? 'prune-heads' : `prune-heads-${backend}`;
writeFileSync(new URL(`../../bench/results/${name}.json`, import.meta.url), JSON.stringify({
  name, date: new Date().toISOString(), backend, training, config: { dim, context, heads: 4, layers: 2 }, base,
  summary: { base_loss: base, half_heads_removed_loss: half.loss, increase: half.loss - base, taylor_order_half_loss: curves.taylor[halfway].loss, random_order_half_loss: curves.random[halfway].loss },
  headScores: rankings, curves,
}, null, 2) + '\n');
tf.dispose([scoring.x, scoring.y, measuring.x, measuring.y]);
model.dispose();
releaseBackend();
