import { DatasetError } from './errors.js';
import { MNIST_PIXELS, type MnistData, type MnistSplit } from './mnist.js';

/** One side of a split-MNIST task: labels remapped to 0/1, the digits kept in `originalY`. */
export interface SplitMnistSubset extends MnistSplit {
  /** 0 for the task's first digit, 1 for its second. */
  y: Int32Array;
  /** The digit (0..9) of each sample. */
  originalY: Int32Array;
}

/** One task of {@link splitMnist}. */
export interface SplitMnistTask {
  /** Position in the sequence, from 0. */
  id: number;
  /** The two digits; `digits[0]` becomes label 0 and `digits[1]` label 1. */
  digits: [number, number];
  train: SplitMnistSubset;
  test: SplitMnistSubset;
}

/** Options of {@link splitMnist}. */
export interface SplitMnistOptions {
  /** The digit pairs, one per task; [[0,1],[2,3],[4,5],[6,7],[8,9]] by default. */
  pairs?: ReadonlyArray<readonly [number, number]>;
}

const DEFAULT_PAIRS: ReadonlyArray<readonly [number, number]> = [
  [0, 1],
  [2, 3],
  [4, 5],
  [6, 7],
  [8, 9],
];

function checkPairs(pairs: ReadonlyArray<readonly [number, number]>): void {
  const invalid = (message: string): never => {
    throw new DatasetError('INVALID_ARGUMENT', `splitMnist options.pairs: ${message}`, { pairs });
  };
  if (!Array.isArray(pairs) || pairs.length === 0) invalid('give at least one pair of digits.');
  const seen = new Set<number>();
  pairs.forEach((pair, task) => {
    if (!Array.isArray(pair) || pair.length !== 2) invalid(`task ${task} must be a pair [a, b] of digits.`);
    for (const digit of pair) {
      if (!Number.isInteger(digit) || digit < 0 || digit > 9) {
        invalid(`task ${task} has ${String(digit)}; digits are integers 0..9.`);
      }
      if (seen.has(digit)) invalid(`digit ${digit} appears twice; each digit belongs to one task.`);
      seen.add(digit);
    }
  });
}

function subset(split: MnistSplit, digits: readonly [number, number]): SplitMnistSubset {
  let count = 0;
  for (const label of split.y) if (label === digits[0] || label === digits[1]) count++;
  const x = new Float32Array(count * MNIST_PIXELS);
  const y = new Int32Array(count);
  const originalY = new Int32Array(count);
  const index = new Int32Array(count);
  let k = 0;
  for (let i = 0; i < split.count; i++) {
    const label = split.y[i];
    if (label !== digits[0] && label !== digits[1]) continue;
    x.set(split.x.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
    y[k] = label === digits[0] ? 0 : 1;
    originalY[k] = label;
    index[k] = split.index[i];
    k++;
  }
  return { x, y, originalY, count, shape: [...split.shape], index };
}

/**
 * Split MNIST, the class-incremental benchmark (Zenke et al. 2017): one binary task per digit
 * pair. Samples keep the order of `data`'s train and test sides, so the task split inherits
 * the fixed MNIST split.
 *
 * @example
 * const tasks = splitMnist(loadMnist());
 * tasks[1].digits; // [2, 3]
 * tasks[1].train.y; // 0 for each 2, 1 for each 3; tasks[1].train.originalY holds 2s and 3s
 */
export function splitMnist(data: MnistData, options: SplitMnistOptions = {}): SplitMnistTask[] {
  const pairs = options.pairs ?? DEFAULT_PAIRS;
  checkPairs(pairs);
  return pairs.map((pair, id) => ({
    id,
    digits: [pair[0], pair[1]],
    train: subset(data.train, pair),
    test: subset(data.test, pair),
  }));
}
