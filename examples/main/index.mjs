// The main job: train LeNet-300-100 (784-300-100-10, ReLU) on 8,000 real MNIST digits and
// report test accuracy on the 2,000 held-out digits, the parameter count and the FLOPs.
// Later steps of the library (pruning, early exit) extend this job.
//
//   npm run main                  # from the repository root
//   node examples/main/index.mjs --epochs 10 --backend cpu
import { parseArgs } from 'node:util';
import { Model, lenet300100, fit, evaluate, adam, tf, useBackend } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { loadMnist } from '@rs/datasets';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '10' },
    'batch-size': { type: 'string', default: '64' },
    'learning-rate': { type: 'string', default: '0.001' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'cpu' },
  },
});

const started = Date.now();
await installCpu({ activate: false });
await useBackend(args.backend);

const mnist = loadMnist();
console.log(`MNIST (${mnist.source}): ${mnist.train.count} train / ${mnist.test.count} test digits, backend ${tf.getBackend()}`);
const train = {
  x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]),
  y: tf.tensor1d(mnist.train.y, 'int32'),
};
const test = {
  x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]),
  y: tf.tensor1d(mnist.test.y, 'int32'),
};

const model = Model.create(lenet300100(), { seed: Number(args.seed) });
const counts = model.counts();
console.log(`LeNet-300-100: ${counts.params.toLocaleString('en-US')} parameters, ${counts.flops.toLocaleString('en-US')} FLOPs per digit`);

await fit(model, train, {
  loss: 'softmaxCrossEntropy',
  optimizer: adam({ learningRate: Number(args['learning-rate']) }),
  epochs: Number(args.epochs),
  batchSize: Number(args['batch-size']),
  seed: Number(args.seed),
  verbose: true,
});

const result = evaluate(model, test);
console.log(`test accuracy: ${(100 * result.accuracy).toFixed(2)}% on ${mnist.test.count} held-out digits (loss ${result.loss.toFixed(4)})`);
console.log(`parameters: ${counts.params.toLocaleString('en-US')}  FLOPs: ${counts.flops.toLocaleString('en-US')}  time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
model.dispose();
tf.dispose([train.x, train.y, test.x, test.y]);
