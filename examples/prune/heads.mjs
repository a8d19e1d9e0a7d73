// Attention-head pruning on the Moby Dick character transformer (2 layers, width 128, 4 heads,
// context 64), in the manner of Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"):
// train, score each head by first-order Taylor importance on held-out text (|w * dL/dw| summed
// over the head's q/k/v/o weights through core's unit groups), then remove heads from the least
// important up, without fine-tuning, and report validation loss against heads removed. A random
// removal order is the control. Writes bench/results/prune-heads.json.
//   node examples/prune/heads.mjs [--minutes 4]
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { Model, charTransformer, trainStep, adam, softmaxCrossEntropy, tf, saveToBuffer, loadFromBuffer, createRng } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { groupUnitScores, taylor } from '@rs/prune';

const { values: args } = parseArgs({ options: { minutes: { type: 'string', default: '4' }, seed: { type: 'string', default: '0' } } });
await installCpu({ activate: false });
await installWasm();
const corpus = loadMobyDick();
const context = 64;
const model = Model.create(charTransformer({ vocabSize: corpus.vocab.length, context, dim: 128, heads: 4, layers: 2 }), { seed: Number(args.seed) });
const batches = charBatches(corpus.train, { context, batchSize: 16, seed: Number(args.seed) });
const optimizer = adam({ learningRate: 3e-3 });
const started = performance.now();
let step = 0;
while (performance.now() - started < Number(args.minutes) * 60_000) {
  const b = batches.sample(++step);
  const x = tf.tensor2d(b.x, [16, context], 'int32');
  const y = tf.tensor2d(b.y, [16, context], 'int32');
  trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
  tf.dispose([x, y]);
}
// Held-out text: windows for scoring and different windows for measuring.
const windows = (seed) => {
  const b = charBatches(corpus.validation, { context, batchSize: 128, seed }).sample(0);
  return { x: tf.tensor2d(b.x, [128, context], 'int32'), y: tf.tensor2d(b.y, [128, context], 'int32') };
};
const scoring = windows(11);
const measuring = windows(12);
const loss = (m) => tf.tidy(() => softmaxCrossEntropy(m.predict(measuring.x, { batchSize: 32 }), measuring.y).dataSync()[0]);
const base = loss(model);
console.log(`trained ${step} steps in ${args.minutes} min: validation loss ${base.toFixed(3)} nats/char`);

const headGroups = model.groups().filter((g) => g.id.endsWith(':heads'));
const scores = groupUnitScores(model, headGroups, taylor, { batches: [scoring], loss: softmaxCrossEntropy });
const heads = headGroups.flatMap((g) => [...(scores.get(g.id) ?? [])].map((value, unit) => ({ group: g.id, unit, value })));
const byImportance = [...heads].sort((a, b) => a.value - b.value);
const rng = createRng(5);
const randomOrder = [...heads].map((h) => ({ h, r: rng.next() })).sort((a, b) => a.r - b.r).map((e) => e.h);
const saved = saveToBuffer(model);

// Each layer keeps at least one head: a head whose removal would empty its layer is skipped.
function removable(order) {
  const left = new Map(headGroups.map((g) => [g.id, g.size]));
  return order.filter((h) => (left.get(h.group) > 1 ? (left.set(h.group, left.get(h.group) - 1), true) : false));
}

function curve(order) {
  const points = [{ removed: 0, loss: base }];
  const sequence = removable(order);
  for (let k = 1; k <= sequence.length; k++) {
    const chosen = sequence.slice(0, k);
    const perGroup = chosen.reduce((acc, h) => ((acc[h.group] ??= []).push(h), acc), {});
    const copy = loadFromBuffer(saved);
    copy.edit((tx) => {
      for (const [id, hs] of Object.entries(perGroup)) tx.removeUnits(id, hs.map((h) => h.unit));
    }, { technique: 'prune', reason: `remove ${k} least important heads` });
    points.push({ removed: k, loss: loss(copy), params: copy.counts().params });
    copy.dispose();
  }
  return points;
}
const importance = curve(byImportance);
const control = curve(randomOrder);
console.log('heads removed: validation loss (Taylor order | random order)');
for (let i = 0; i < Math.max(importance.length, control.length); i++) console.log(`${i}: ${importance[i]?.loss.toFixed(3) ?? '-'} | ${control[i]?.loss.toFixed(3) ?? '-'}`);
const half = importance.find((p) => p.removed === heads.length / 2);
console.log(`removing half the heads (${heads.length / 2} of ${heads.length}) by importance: ${base.toFixed(3)} -> ${half.loss.toFixed(3)} nats/char (+${(half.loss - base).toFixed(3)})`);
writeFileSync(new URL('../../bench/results/prune-heads.json', import.meta.url), JSON.stringify({
  name: 'prune-heads', date: new Date().toISOString(), steps: step, minutes: Number(args.minutes), base,
  summary: { base_loss: base, half_heads_removed_loss: half.loss, increase: half.loss - base },
  headScores: heads, importance, control,
}, null, 2) + '\n');
