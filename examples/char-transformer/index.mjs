// A small character-level language model on the text of Moby Dick: train a decoder-only
// transformer (causal multi-head attention, FFN, layerNorm, residuals), report validation loss,
// then sample text from it.
//
//   node examples/char-transformer/index.mjs --steps 300
import { parseArgs } from 'node:util';
import { Model, charTransformer, trainStep, adam, softmaxCrossEntropy, tf, createRng } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { install as installNative } from '@rs/backend-native';
import { loadMobyDick, charBatches } from '@rs/datasets';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '3000' },
    minutes: { type: 'string', default: '9.5' },
    context: { type: 'string', default: '64' },
    'batch-size': { type: 'string', default: '16' },
    dim: { type: 'string', default: '128' },
    'learning-rate': { type: 'string', default: '0.003' },
    'eval-every': { type: 'string', default: '100' },
    backend: { type: 'string', default: 'wasm' },
    layers: { type: 'string', default: '2' },
    heads: { type: 'string', default: '4' },
    prompt: { type: 'string', default: 'Call me Ishmael. ' },
    length: { type: 'string', default: '200' },
    temperature: { type: 'string', default: '0.8' },
    seed: { type: 'string', default: '0' },
  },
});
await installCpu({ activate: args.backend === 'cpu' });
if (args.backend === 'wasm') await installWasm();
if (args.backend === 'native') await installNative();
const corpus = loadMobyDick();
const context = Number(args.context);
const batchSize = Number(args['batch-size']);
const model = Model.create(
  charTransformer({ vocabSize: corpus.vocab.length, context, dim: Number(args.dim), heads: Number(args.heads), layers: Number(args.layers) }),
  { seed: Number(args.seed) },
);
console.log(`Moby Dick: ${corpus.text.length.toLocaleString('en-US')} characters, vocabulary ${corpus.vocab.length}; model ${model.counts().params.toLocaleString('en-US')} parameters`);

const train = charBatches(corpus.train, { context, batchSize, seed: Number(args.seed) });
// Validation: 128 fixed windows from the held-out last 10% of the book.
const held = charBatches(corpus.validation, { context, batchSize: 128, seed: 1 }).sample(0);
const vx = tf.tensor2d(held.x, [128, context], 'int32');
const vy = tf.tensor2d(held.y, [128, context], 'int32');
const validationLoss = () => tf.tidy(() => softmaxCrossEntropy(model.predict(vx, { batchSize: 32 }), vy).dataSync()[0]);
console.log(`backend ${tf.getBackend()}; step 0: validation loss ${validationLoss().toFixed(3)} nats/char (uniform: ${Math.log(corpus.vocab.length).toFixed(3)})`);
const optimizer = adam({ learningRate: Number(args['learning-rate']) });
const steps = Number(args.steps);
const budgetMs = Number(args.minutes) * 60_000;
const evalEvery = Number(args['eval-every']);
const started = performance.now();
const curve = [];
for (let step = 1; step <= steps; step++) {
  const batch = train.sample(step);
  const x = tf.tensor2d(batch.x, [batchSize, context], 'int32');
  const y = tf.tensor2d(batch.y, [batchSize, context], 'int32');
  const { loss } = trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
  tf.dispose([x, y]);
  const elapsed = performance.now() - started;
  const last = step === steps || elapsed > budgetMs;
  if (step % evalEvery === 0 || last) {
    const point = { step, seconds: Math.round(elapsed / 1000), train: loss, validation: validationLoss() };
    curve.push(point);
    console.log(`step ${step} (${point.seconds} s): train loss ${loss.toFixed(3)}, validation loss ${point.validation.toFixed(3)}`);
  }
  if (last) break;
}
const best = Math.min(...curve.map((p) => p.validation));
console.log(`loss curve (step: validation): ${curve.map((p) => `${p.step}: ${p.validation.toFixed(2)}`).join(', ')}`);
console.log(`best validation loss ${best.toFixed(3)} nats/char in ${curve[curve.length - 1].seconds} s`);

// Sampling: feed the last `context` characters, draw the next one from softmax(logits / T).
const rng = createRng(Number(args.seed) + 1);
const temperature = Number(args.temperature);
let ids = Array.from(corpus.encode(args.prompt));
for (let i = 0; i < Number(args.length); i++) {
  const window = ids.slice(-context);
  const padded = [...new Array(context - window.length).fill(window[0]), ...window];
  const probs = tf.tidy(() => {
    const logits = model.apply(tf.tensor2d(padded, [1, context], 'int32'));
    const last = tf.slice(logits, [0, context - 1, 0], [1, 1, -1]);
    return tf.softmax(tf.div(tf.reshape(last, [-1]), temperature)).dataSync();
  });
  let r = rng.next();
  let next = probs.length - 1;
  for (let k = 0; k < probs.length; k++) {
    r -= probs[k];
    if (r <= 0) {
      next = k;
      break;
    }
  }
  ids.push(next);
}
console.log('--- sample ---');
console.log(corpus.decode(ids));
model.dispose();
tf.dispose([vx, vy]);
