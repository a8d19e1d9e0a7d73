import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { tf, Model, lenet300100, trainStep, adam, softmaxCrossEntropy } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install, poolStats } from './index';

// Storage reuse: native kernels' outputs take the storage of deleted tensors. These tests show
// that reuse happens and that storage something else can still see is never reused.

let previous = '';
beforeAll(async () => {
  await installCpu({ activate: false });
  await install({ threads: 2, activate: false });
  previous = tf.getBackend() ?? 'cpu';
  tf.setBackend('native');
});
afterAll(() => {
  tf.setBackend(previous);
});

const N = 4096;
const ones = () => tf.fill([N], 1);
/** Native outputs of length `n` filled with `value`, made and deleted, so that any pooled array of that length is written over. */
function scribble(n: number, value: number): void {
  tf.tidy(() => {
    const x = tf.fill([n], value);
    for (let i = 0; i < 8; i++) tf.add(x, tf.zerosLike(x));
  });
}

describe('native storage pool', () => {
  it('reuses the storage of a deleted output for the next output of the same length', () => {
    const x = ones();
    const a = tf.add(x, x);
    const before = poolStats().reused;
    a.dispose();
    const b = tf.add(x, x);
    expect(poolStats().reused).toBe(before + 1);
    expect(Array.from(b.dataSync().slice(0, 3))).toEqual([2, 2, 2]);
    tf.dispose([x, b]);
  });

  it('never reuses storage that was read out with dataSync or data', async () => {
    const x = ones();
    const a = tf.add(x, x);
    const read = a.dataSync();
    const b = tf.mul(x, tf.scalar(3));
    const readAsync = (await b.data()) as Float32Array;
    tf.dispose([a, b]);
    scribble(N, 9);
    expect(read.every((v) => v === 2)).toBe(true);
    expect(readAsync.every((v) => v === 3)).toBe(true);
    x.dispose();
  });

  it('never reuses storage that a slice still views', () => {
    const x = tf.fill([2 * N], 1);
    const big = tf.add(x, x);
    const view = tf.slice(big, [0], [N]); // a contiguous slice: the cpu kernel returns a view of big's storage
    big.dispose();
    scribble(2 * N, 9);
    const values = view.dataSync();
    expect(values.every((v) => v === 2)).toBe(true);
    tf.dispose([x, view]);
  });

  it('never reuses an array the user passed in', () => {
    const mine = new Float32Array(N).fill(5);
    const t = tf.tensor1d(mine);
    const doubled = tf.add(t, t);
    tf.dispose([t, doubled]);
    scribble(N, 9);
    expect(mine.every((v) => v === 5)).toBe(true);
  });

  it('training with reuse gives the losses of the cpu backend (20 LeNet steps, 1e-4) and leaks nothing', () => {
    const losses = (backend: string): number[] => {
      tf.setBackend(backend);
      const model = Model.create(lenet300100(), { seed: 3 });
      const x = tf.randomUniform([64, 784], 0, 1, 'float32', 1);
      const y = tf.randomUniformInt([64], 0, 10, 2);
      const optimizer = adam({ learningRate: 1e-3 });
      const out: number[] = [];
      let live = 0;
      for (let step = 0; step < 20; step++) {
        out.push(trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss);
        if (step === 0) live = tf.memory().numTensors; // after the optimizer made its moments
      }
      expect(tf.memory().numTensors).toBe(live);
      tf.dispose([x, y]);
      model.dispose();
      return out;
    };
    const reference = losses('cpu');
    const reusedBefore = poolStats().reused;
    const native = losses('native');
    expect(poolStats().reused - reusedBefore).toBeGreaterThan(100);
    native.forEach((loss, i) => expect(Math.abs(loss - reference[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(reference[i]))));
  });
});
