import { tf, type Dataset, type Tensor } from '@rs/core';
import { mnistMlpSpace, nb201Space, tableEvaluator, trainingEvaluator, type Evaluator, type SearchSpace } from '@rs/nas';
import { loadMnist, loadNasBench201, MNIST_PIXELS } from '@rs/datasets';
import { usage } from '../errors';

/** Settings of the built-in evaluators of `rs search`. */
export interface SearchEvaluatorSettings {
  epochs: number;
  trainSize: number;
  validationSize: number;
  seed: number;
}

/**
 * The name of a built-in evaluator with its settings, as a queue job carries it: `nb201`, or
 * `mnist-mlp?epochs=1&train=4000&validation=1000&seed=0`; `rs worker` makes the evaluator from it.
 */
export function evaluatorName(space: 'nb201' | 'mnist-mlp', settings: SearchEvaluatorSettings): string {
  if (space === 'nb201') return 'nb201';
  return `mnist-mlp?epochs=${settings.epochs}&train=${settings.trainSize}&validation=${settings.validationSize}&seed=${settings.seed}`;
}

/** A built-in evaluator from its name; the tensors it creates are pushed to `tensors` (the caller disposes them). */
export function createSearchEvaluator(name: string, tensors: Tensor[]): { space: SearchSpace; evaluator: Evaluator; train?: Dataset; validation?: Dataset } {
  if (name === 'nb201') {
    const space = nb201Space();
    return { space, evaluator: tableEvaluator(space, loadNasBench201().rows) };
  }
  const match = /^mnist-mlp\?epochs=(\d+)&train=(\d+)&validation=(\d+)&seed=(\d+)$/.exec(name);
  if (!match) throw usage(`unknown search evaluator '${name}' (rs search makes 'nb201' or 'mnist-mlp?epochs=E&train=N&validation=M&seed=S').`);
  const [epochs, trainSize, validationSize, seed] = match.slice(1).map(Number);
  const space = mnistMlpSpace();
  // Validation rows are the last training digits, never the test split (which only the saved model is scored on).
  const mnist = loadMnist();
  if (trainSize < 1 || validationSize < 1 || trainSize + validationSize > mnist.train.count) throw usage(`evaluator '${name}': train and validation sizes must be positive and fit in ${mnist.train.count} training digits.`);
  const rows = (start: number, count: number): Dataset => {
    const x = tf.tensor2d(mnist.train.x.subarray(start * MNIST_PIXELS, (start + count) * MNIST_PIXELS), [count, MNIST_PIXELS]);
    const y = tf.tensor1d(mnist.train.y.subarray(start, start + count), 'int32');
    tensors.push(x, y);
    return { x, y };
  };
  const train = rows(0, trainSize);
  const validation = rows(mnist.train.count - validationSize, validationSize);
  return { space, evaluator: trainingEvaluator(space, { train, validation, epochs, seed }), train, validation };
}
