// Worker-pool module for @rs/nas: each worker thread sets up its own single-threaded wasm
// backend and MNIST tensors once, then trains architectures of the MNIST MLP space on request.
import { tf } from '@rs/core';
import { loadMnist } from '@rs/datasets';
import { mnistMlpSpace, trainingEvaluator } from '@rs/nas';
import { selectBackend } from './backends.mjs';

export async function createEvaluator(options = {}) {
  await selectBackend(options.backend ?? 'wasm', { threads: 1 });
  const mnist = loadMnist();
  const trainCount = options.trainCount ?? 4000;
  const x = tf.tensor2d(mnist.train.x, [mnist.train.count, 784]);
  const y = tf.tensor1d(mnist.train.y, 'int32');
  const train = { x: tf.slice(x, 0, trainCount), y: tf.slice(y, 0, trainCount) };
  const validation = { x: tf.slice(x, 7000, 1000), y: tf.slice(y, 7000, 1000) };
  const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
  x.dispose();
  y.dispose();
  return trainingEvaluator(mnistMlpSpace(), { train, validation, test, epochs: options.epochs ?? 1, batchSize: 64, learningRate: 1e-3, seed: 0 });
}
