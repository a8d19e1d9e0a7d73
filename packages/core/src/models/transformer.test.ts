import { describe, it, expect, beforeAll } from 'vitest';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { tf } from '../tf';
import { useCpu } from '../test-setup';
import { Model } from '../model';
import { charTransformer } from './builders';
import { trainStep } from '../train/gradients';
import { adam } from '../train/optimizers';
import { softmaxCrossEntropy } from '../train/losses';

beforeAll(useCpu);

describe('character transformer on Moby Dick', () => {
  it('trains: the loss on a fixed validation batch falls within 40 steps, without leaking tensors', () => {
    const corpus = loadMobyDick();
    const context = 32;
    const model = Model.create(charTransformer({ vocabSize: corpus.vocab.length, context, dim: 32, heads: 4, layers: 1 }), { seed: 0 });
    const batches = charBatches(corpus.train.subarray(0, 200_000), { context, batchSize: 16, seed: 1 });
    const held = charBatches(corpus.validation, { context, batchSize: 32, seed: 2 }).sample(0);
    const vx = tf.tensor2d(held.x, [32, context], 'int32');
    const vy = tf.tensor2d(held.y, [32, context], 'int32');
    const validationLoss = () => tf.tidy(() => softmaxCrossEntropy(model.apply(vx), vy).dataSync()[0]);
    const initial = validationLoss();
    // An untrained model is near uniform over the vocabulary: log(83) = 4.42.
    expect(initial).toBeGreaterThan(Math.log(corpus.vocab.length) - 0.5);
    const optimizer = adam({ learningRate: 3e-3 });
    let live = 0;
    for (let step = 0; step < 40; step++) {
      const batch = batches.sample(step);
      const x = tf.tensor2d(batch.x, [16, context], 'int32');
      const y = tf.tensor2d(batch.y, [16, context], 'int32');
      trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
      tf.dispose([x, y]);
      if (step === 1) live = tf.memory().numTensors;
      if (step > 1) expect(tf.memory().numTensors).toBe(live);
    }
    const final = validationLoss();
    // 40 Adam steps must take at least 0.8 nats off the near-uniform start on held-out text.
    expect(final).toBeLessThan(initial - 0.8);
    tf.dispose([vx, vy]);
    model.dispose();
  });
});
