import { DatasetError, checkInteger, checkSeed } from './errors.js';
import { MNIST_PIXELS, type MnistData, type MnistSplit } from './mnist.js';
import { deriveSeed, mulberry32, range, shuffleInPlace } from './random.js';

/** One task of {@link permutedMnist}. */
export interface PermutedMnistTask {
  /** Position in the sequence, from 0. */
  id: number;
  /** 784 pixel indices: permuted pixel j is original pixel `permutation[j]`. */
  permutation: Int32Array;
  train: MnistSplit;
  test: MnistSplit;
}

/** Options of {@link permutedMnist}. */
export interface PermutedMnistOptions {
  /** Number of tasks, >= 1. Each task holds a full copy of the pixels (about 31 MB). */
  tasks: number;
  /** Seed of the permutations; 0 by default. */
  seed?: number;
  /** Task 0 uses the identity permutation (plain MNIST); true by default. */
  identityFirst?: boolean;
}

/**
 * Applies a pixel permutation to every image of `x` (`count * 784` values): output pixel j of
 * each image is input pixel `permutation[j]`.
 *
 * @example
 * const task = permutedMnist(loadMnist(), { tasks: 2 })[1];
 * const mine = permutePixels(myImages, task.permutation); // same shuffle on new images
 */
export function permutePixels(x: Float32Array, permutation: Int32Array): Float32Array {
  const pixels = permutation.length;
  if (pixels === 0 || x.length % pixels !== 0) {
    throw new DatasetError(
      'INVALID_ARGUMENT',
      `permutePixels: x has ${x.length} values, not a multiple of the permutation length ${pixels}.`,
      { length: x.length, pixels },
    );
  }
  const seen = new Uint8Array(pixels);
  for (const j of permutation) {
    if (!Number.isInteger(j) || j < 0 || j >= pixels || seen[j]) {
      throw new DatasetError(
        'INVALID_ARGUMENT',
        `permutePixels: permutation must hold each of 0..${pixels - 1} exactly once (bad or repeated ${j}).`,
        { value: j },
      );
    }
    seen[j] = 1;
  }
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += pixels) {
    for (let j = 0; j < pixels; j++) out[base + j] = x[base + permutation[j]];
  }
  return out;
}

function permuteSplit(split: MnistSplit, permutation: Int32Array): MnistSplit {
  return { ...split, shape: [...split.shape], x: permutePixels(split.x, permutation) };
}

/**
 * Permuted MNIST (Goodfellow et al. 2013; Kirkpatrick et al. 2017): every task is MNIST with one
 * fixed, seeded shuffle of the 784 pixel positions; labels stay 0..9. Task 0 is the identity
 * (plain MNIST) unless `identityFirst` is false. Task t's permutation depends only on the seed
 * and t (not on `tasks`), so asking for more tasks extends the sequence without changing it.
 * The identity task shares `data`'s pixel arrays; the others copy them.
 *
 * @example
 * const tasks = permutedMnist(loadMnist(), { tasks: 5, seed: 0 });
 * tasks[0].permutation; // 0, 1, ..., 783
 * tasks[3].train.x; // the same 8,000 digits, pixels shuffled by tasks[3].permutation
 */
export function permutedMnist(data: MnistData, options: PermutedMnistOptions): PermutedMnistTask[] {
  if (typeof options !== 'object' || options === null) {
    throw new DatasetError('INVALID_ARGUMENT', 'permutedMnist needs options { tasks, seed? }.', {});
  }
  const tasks = checkInteger('permutedMnist options.tasks', options.tasks, 1);
  const seed = checkSeed('permutedMnist options.seed', options.seed ?? 0);
  const identityFirst = options.identityFirst ?? true;
  const out: PermutedMnistTask[] = [];
  for (let id = 0; id < tasks; id++) {
    if (id === 0 && identityFirst) {
      out.push({ id, permutation: range(MNIST_PIXELS), train: data.train, test: data.test });
      continue;
    }
    const permutation = shuffleInPlace(range(MNIST_PIXELS), mulberry32(deriveSeed(seed, id)));
    out.push({
      id,
      permutation,
      train: permuteSplit(data.train, permutation),
      test: permuteSplit(data.test, permutation),
    });
  }
  return out;
}
