import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import { loadMnist } from './mnist.js';
import { permutePixels, permutedMnist } from './permuted-mnist.js';

function isBijection(permutation: Int32Array, n: number): boolean {
  if (permutation.length !== n) return false;
  const seen = new Uint8Array(n);
  for (const j of permutation) {
    if (j < 0 || j >= n || seen[j]) return false;
    seen[j] = 1;
  }
  return true;
}

describe('permutedMnist', () => {
  const data = loadMnist();
  const tasks = permutedMnist(data, { tasks: 3, seed: 0 });

  it('makes task 0 the identity and the others distinct bijections of 784 pixels', () => {
    expect(tasks.length).toBe(3);
    expect(Array.from(tasks[0].permutation)).toEqual(Array.from({ length: 784 }, (_, i) => i));
    expect(tasks[0].train.x).toBe(data.train.x);
    for (const task of tasks) expect(isBijection(task.permutation, 784)).toBe(true);
    expect(tasks[1].permutation).not.toEqual(tasks[0].permutation);
    expect(tasks[2].permutation).not.toEqual(tasks[1].permutation);
  });

  it('moves pixels as documented and keeps labels', () => {
    const task = tasks[1];
    expect(task.train.y).toEqual(data.train.y);
    expect(task.test.count).toBe(2000);
    for (const n of [0, 1, 7999]) {
      for (const j of [0, 100, 400, 783]) {
        expect(task.train.x[n * 784 + j]).toBe(data.train.x[n * 784 + task.permutation[j]]);
      }
    }
  });

  it('is deterministic, and task t does not depend on the number of tasks', () => {
    const again = permutedMnist(data, { tasks: 2, seed: 0 });
    expect(again[1].permutation).toEqual(tasks[1].permutation);
    const otherSeed = permutedMnist(data, { tasks: 2, seed: 1 });
    expect(otherSeed[1].permutation).not.toEqual(tasks[1].permutation);
    const noIdentity = permutedMnist(data, { tasks: 1, seed: 0, identityFirst: false });
    expect(isBijection(noIdentity[0].permutation, 784)).toBe(true);
    expect(noIdentity[0].permutation).not.toEqual(tasks[0].permutation);
  });

  it('permutePixels is undone by the inverse permutation (property)', () => {
    const cases = fc.integer({ min: 1, max: 40 }).chain((n) =>
      fc.tuple(
        fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }),
        fc.integer({ min: 1, max: 4 }),
      ),
    );
    fc.assert(
      fc.property(cases, ([order, images]) => {
        const permutation = Int32Array.from(order);
        const n = permutation.length;
        const x = Float32Array.from({ length: n * images }, (_, i) => i);
        const inverse = new Int32Array(n);
        permutation.forEach((j, i) => (inverse[j] = i));
        expect(permutePixels(permutePixels(x, permutation), inverse)).toEqual(x);
      }),
      { numRuns: 100, seed: 42 },
    );
  });

  it('rejects bad options', () => {
    for (const options of [{ tasks: 0 }, { tasks: -2 }, { tasks: 1.5 }, { tasks: 2, seed: 0.5 }]) {
      let caught: unknown;
      try {
        permutedMnist(data, options);
      } catch (error) {
        caught = error;
      }
      expect(isDatasetError(caught, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect(() => permutePixels(new Float32Array(5), Int32Array.from([0, 0]))).toThrow(/exactly once|multiple/);
  });
});
