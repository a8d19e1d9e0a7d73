// Mixture of experts on Moby Dick: a character transformer whose FFNs are Switch MoE layers
// (8 experts, top-1, capacity factor 1.25). Every step reports the balance and z losses, the
// dropped-token rate and the per-expert load; then the experts are reorganised through
// journaled core edits (split the busiest expert with its output preserved, remove the least
// used, merge two), training continues, and a dense MLP is upcycled into an MoE.
//
//   node examples/moe/index.mjs [--steps 120] [--backend wasm|cpu]
import { parseArgs } from 'node:util';
import { Model, createOpRegistry, charTransformer, lenet300100, trainStep, adam, softmaxCrossEntropy, tf } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { register as registerMoe, moeGraph, moeMetrics, addExpert, removeExpert, mergeExperts, busiestExpert, leastUsedExpert, upcycle } from '@rs/moe';

const { values: args } = parseArgs({
  options: { steps: { type: 'string', default: '120' }, backend: { type: 'string', default: 'wasm' } },
});
await installCpu({ activate: args.backend === 'cpu' });
if (args.backend === 'wasm') await installWasm();
const registry = registerMoe(createOpRegistry());
const book = loadMobyDick();
const context = 32;
const batchSize = 16;
const graph = moeGraph(charTransformer({ vocabSize: book.vocab.length, context, dim: 32, heads: 2, layers: 2, ffn: 64 }), {
  experts: 8,
  routing: 'switch',
  capacityFactor: 1.25,
  // At evaluation no expert overflows here, so the split below is exactly function-preserving.
  evalCapacityFactor: 4,
});
const model = Model.create(graph, { registry, seed: 0 });
console.log(`MoE transformer: ${model.counts().params.toLocaleString('en-US')} parameters, ${Math.round(model.counts().flops / context).toLocaleString('en-US')} FLOPs per token`);
const batches = charBatches(book.train, { context, batchSize, seed: 0 });
const optimizer = adam({ learningRate: 0.003 });
const layer = 'block1.moe';
let last;
const train = (from, to) => {
  for (let step = from; step <= to; step++) {
    const batch = batches.sample(step);
    const x = tf.tensor2d(batch.x, [batchSize, context], 'int32');
    const y = tf.tensor2d(batch.y, [batchSize, context], 'int32');
    last = trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    tf.dispose([x, y]);
    if (step % 20 === 0 || step === to) {
      const m = moeMetrics(last.metrics, layer);
      console.log(
        `step ${step}: loss ${last.loss.toFixed(3)}  balance ${last.losses[`${layer}/balance`].toFixed(4)}  z ${last.losses[`${layer}/z`].toFixed(4)}  ` +
          `dropped ${(100 * m.dropped).toFixed(1)}%  entropy ${m.entropy.toFixed(2)}  busiest/mean ${m.imbalance.toFixed(2)}  loads [${m.loads.map((v) => v.toFixed(2)).join(' ')}]`,
      );
    }
  }
};
const steps = Number(args.steps);
train(1, steps);

// Reorganise the experts of one layer; every change is one journaled, transactional edit.
const probe = tf.tensor2d(batches.sample(0).x, [batchSize, context], 'int32');
const loads = moeMetrics(last.metrics, layer).loads;
const least = leastUsedExpert(loads);
removeExpert(model, layer, least, `least used: ${(100 * loads[least]).toFixed(1)}% of tokens`);
loads.splice(least, 1);
const before = model.apply(probe);
const busiest = busiestExpert(loads);
addExpert(model, layer, { copyOf: busiest, reason: `split the busiest expert (${(100 * loads[busiest]).toFixed(1)}% of tokens)` });
const change = tf.tidy(() => tf.max(tf.abs(tf.sub(before, model.apply(probe)))).dataSync()[0]);
console.log(`removed expert ${least}, split expert ${busiest}: largest output change of the split ${change.toExponential(1)}`);
mergeExperts(model, layer, 0, 1);
console.log(`after merging experts 0 and 1: ${model.param(`${layer}/w1`).value.shape[0]} experts`);
train(steps + 1, steps + 40);
for (const entry of model.journal) console.log(`journal: ${entry.technique}: ${entry.reason} (params ${entry.params.before} -> ${entry.params.after})`);

// Sparse upcycling: a dense MLP's FFN becomes 4 experts that start as copies of it.
const dense = Model.create(lenet300100({ inputs: 16, hidden: [32, 16], classes: 4 }), { registry, seed: 1 });
const x = tf.randomNormal([64, 16], 0, 1, 'float32', 2);
const denseOut = dense.apply(x);
upcycle(dense, { ffns: ['fc1'], experts: 4, routing: 'top2' });
const upcycled = tf.tidy(() => tf.max(tf.abs(tf.sub(denseOut, dense.apply(x)))).dataSync()[0]);
console.log(`upcycled fc1 -> ${dense.graph.nodes[0].op} with 4 experts; largest output change ${upcycled.toExponential(1)}`);
tf.dispose([probe, before, x, denseOut]);
model.dispose();
dense.dispose();
if (args.backend === 'wasm') tf.removeBackend('wasm');
