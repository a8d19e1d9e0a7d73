// Shared by the pruning scripts: MNIST tensors, backend choice, training and evaluation.
import { tf, fit, evaluate, adam, useBackend } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { loadMnist } from '@rs/datasets';

export async function setup(backend = 'wasm') {
  await installCpu({ activate: false });
  if (backend === 'wasm') {
    const { install } = await import('@rs/backend-wasm');
    await install({ activate: false });
  }
  await useBackend(backend);
  const mnist = loadMnist();
  return {
    train: { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') },
    test: { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') },
  };
}

export async function train(model, data, { epochs = 20, learningRate = 2e-3, seed = 0, callbacks } = {}) {
  return fit(model, data, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate }), epochs, batchSize: 128, seed, callbacks });
}

export const accuracy = (model, data) => evaluate(model, data).accuracy;
export const pct = (v) => `${(100 * v).toFixed(2)}%`;
