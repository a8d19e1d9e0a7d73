// dynamic-layerdrop: LayerDrop (Fan et al. 2019) on the Moby Dick character transformer. Two
// copies of a 4-layer model, same seed and batches: one trained with LayerDrop p = 0.2, one
// without (p = 0). Both are evaluated on held-out text at full depth and at half depth (layers 0
// and 2 kept, every other layer, without fine-tuning).
//   summary.layerdrop_half_loss < summary.baseline_half_loss is the claim (fairseq's "prune at
//   inference" result: Fan et al. 2019, Table 2 / Figure 2, LayerDrop models keep quality when
//   layers are pruned, plain models do not).
//   pnpm bench dynamic-layerdrop [--backend wasm|cpu] [--steps 400]
import { parseArgs } from 'node:util';
import { tf, Model, adam, charTransformer, createRng } from '@rs/core';
import { transformerBlocks, layerDropStep, lossWithAlias, skipAlias, keepAtDepth } from '@rs/dynamic';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '400' },
    seed: { type: 'string', default: '0' },
  },
});
const backend = await selectBackend(args.backend);
const started = performance.now();
const corpus = loadMobyDick();
const context = 32;
const batchSize = 32;
const layers = 4;
const options = { vocabSize: corpus.vocab.length, context, dim: 48, heads: 2, layers, ffn: 96 };
const train = charBatches(corpus.train, { context, batchSize, seed: Number(args.seed) });
const held = charBatches(corpus.validation, { context, batchSize: 256, seed: 1 }).sample(0);
const vx = tf.tensor2d(held.x, [256, context], 'int32');
const vy = tf.tensor2d(held.y, [256, context], 'int32');
const steps = Number(args.steps);

function trainOne(p) {
  const model = Model.create(charTransformer(options), { seed: Number(args.seed) });
  const blocks = transformerBlocks(model);
  const optimizer = adam({ learningRate: 3e-3 });
  const rng = createRng(Number(args.seed) + 11);
  const t0 = performance.now();
  for (let step = 1; step <= steps; step++) {
    const batch = train.sample(step);
    const x = tf.tensor2d(batch.x, [batchSize, context], 'int32');
    const y = tf.tensor2d(batch.y, [batchSize, context], 'int32');
    layerDropStep(model, x, y, optimizer, { blocks, p, rng });
    tf.dispose([x, y]);
  }
  const full = lossWithAlias(model, vx, vy, new Map());
  const half = lossWithAlias(model, vx, vy, skipAlias(blocks, keepAtDepth(layers, layers / 2)));
  const seconds = (performance.now() - t0) / 1000;
  console.log(`p = ${p}: validation loss full depth ${full.toFixed(4)}, half depth ${half.toFixed(4)} nats/char (${seconds.toFixed(0)} s)`);
  model.dispose();
  return { p, full, half, increase: half - full, seconds };
}
const baseline = trainOne(0);
const layerdrop = trainOne(0.2);
writeResult(
  'dynamic-layerdrop',
  {
    layerdrop_half_loss: layerdrop.half,
    baseline_half_loss: baseline.half,
    layerdrop_full_loss: layerdrop.full,
    baseline_full_loss: baseline.full,
    layerdrop_increase: layerdrop.increase,
    baseline_increase: baseline.increase,
    holds: layerdrop.half < baseline.half && layerdrop.increase < baseline.increase,
    backend,
  },
  {
    reference: 'Fan, Grave & Joulin 2019, Reducing Transformer Depth on Demand with Structured Dropout (ICLR 2020): LayerDrop models pruned to half depth at inference lose far less than models trained without it.',
    setup: { ...options, batchSize, steps, learningRate: 3e-3, validationWindows: 256, keptAtHalfDepth: keepAtDepth(layers, layers / 2) },
    table: [baseline, layerdrop],
    seconds: (performance.now() - started) / 1000,
  },
);
tf.dispose([vx, vy]);
if (backend === 'wasm') tf.removeBackend('wasm');
