import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import { loadMnist, mnistSummary } from './mnist.js';
import { splitMnist } from './split-mnist.js';

describe('splitMnist', () => {
  const data = loadMnist();
  const tasks = splitMnist(data);

  it('makes the five classic digit-pair tasks', () => {
    expect(tasks.map((task) => task.digits)).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
      [8, 9],
    ]);
    expect(tasks.map((task) => task.id)).toEqual([0, 1, 2, 3, 4]);
  });

  it('remaps labels to 0/1 and keeps the digits', () => {
    for (const task of tasks) {
      for (const side of [task.train, task.test]) {
        expect(side.y.length).toBe(side.count);
        expect(side.x.length).toBe(side.count * 784);
        for (let k = 0; k < side.count; k++) {
          expect(side.originalY[k]).toBe(task.digits[side.y[k]]);
        }
        expect(new Set(side.y)).toEqual(new Set([0, 1]));
      }
    }
  });

  it('takes every sample of its digits from the same side of the MNIST split', () => {
    const summary = mnistSummary(data);
    const trainTotal = tasks.reduce((n, task) => n + task.train.count, 0);
    const testTotal = tasks.reduce((n, task) => n + task.test.count, 0);
    expect(trainTotal).toBe(8000);
    expect(testTotal).toBe(2000);
    const task = tasks[2];
    expect(task.train.count).toBe(summary.perClass[4].train + summary.perClass[5].train);
    const trainSet = new Set(data.train.index);
    expect(task.train.index.every((g) => trainSet.has(g))).toBe(true);
    // Pixels follow their sample: the first task-2 image is the first 4-or-5 of data.train.
    const first = data.train.y.findIndex((label) => label === 4 || label === 5);
    expect(task.train.x.subarray(0, 784)).toEqual(data.train.x.subarray(first * 784, (first + 1) * 784));
  });

  it('accepts custom pairs and rejects bad ones', () => {
    const custom = splitMnist(data, { pairs: [[9, 3]] });
    expect(custom[0].train.originalY.every((d, k) => (d === 9 ? 0 : 1) === custom[0].train.y[k])).toBe(true);
    for (const pairs of [[], [[1, 1]], [[0, 10]], [[0, 1], [1, 2]]] as Array<Array<[number, number]>>) {
      let caught: unknown;
      try {
        splitMnist(data, { pairs });
      } catch (error) {
        caught = error;
      }
      expect(isDatasetError(caught, 'INVALID_ARGUMENT')).toBe(true);
    }
  });
});
