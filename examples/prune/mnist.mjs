// Shared by the MNIST pruning scripts: tensors, training and evaluation.
import { tf, fit, evaluate, adam } from '@rs/core';
import { loadMnist } from '@rs/datasets';
export { selectBackend, releaseBackend } from './backend.mjs';

export function loadData() {
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
