import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, createOpRegistry } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { loadMnist } from '@rs/datasets';
import { mnistMlpSpace, trainingEvaluator, nb201Space, registerNasOps, search } from './index';

beforeAll(async () => {
  await install();
});

describe('trainable spaces and the training evaluator', () => {
  it('trains MNIST MLP architectures for real and leaks no tensors', async () => {
    const mnist = loadMnist();
    const x = tf.tensor2d(mnist.train.x.subarray(0, 1500 * 784), [1500, 784]);
    const y = tf.tensor1d(mnist.train.y.subarray(0, 1500), 'int32');
    const train = { x: tf.slice(x, 0, 1000), y: tf.slice(y, 0, 1000) };
    const validation = { x: tf.slice(x, 1000, 500), y: tf.slice(y, 1000, 500) };
    const space = mnistMlpSpace();
    const evaluator = trainingEvaluator(space, { train, validation, epochs: 2, batchSize: 50, learningRate: 2e-3 });
    const live = tf.memory().numTensors;
    const wide = await evaluator.evaluate(space.decode('depth=1,width1=128,act1=relu,width2=32,act2=relu,width3=32,act3=relu'), '');
    expect(tf.memory().numTensors).toBe(live);
    // A trained 784-128-10 network on 1,000 real digits: well above chance (10%).
    expect(wide.validation).toBeGreaterThan(80);
    expect(wide.cost).toBeGreaterThan(0);
    const result = await search({ space, strategy: 'random', evaluator, budget: { evaluations: 3 }, seed: 2 });
    expect(result.trials.every((t) => t.validation > 40)).toBe(true);
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose([x, y, train.x, train.y, validation.x, validation.y]);
  });

  it('builds runnable NAS-Bench-201 cell networks, including the all-none and all-skip cells', () => {
    const registry = registerNasOps(createOpRegistry());
    const space = nb201Space({ inputShape: [8, 8, 1], channels: 4, cells: 2, stemStride: 1 });
    const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 1);
    for (const text of [
      '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|',
      '|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|',
      '|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|',
      '|none~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|none~2|',
    ]) {
      const model = Model.create(space.build!(space.decode(text)), { registry, seed: 0 });
      const y = model.apply(x);
      expect(y.shape).toEqual([3, 10]);
      expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
      y.dispose();
      model.dispose();
    }
    x.dispose();
  });
});
