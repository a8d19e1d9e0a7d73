import { describe, it, expect } from 'vitest';
import { backends, tf, useBackend, isRsError } from '@rs/core';
import { install } from './index';

describe('@rs/backend-cpu', () => {
  it('installs, registers with core and becomes active', async () => {
    const info = await install();
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(backends().map((b) => b.name)).toContain('cpu');
    await useBackend('cpu');
  });

  it('useBackend of an uninstalled backend is a typed error', async () => {
    await expect(useBackend('nope')).rejects.toSatisfy((e: unknown) => isRsError(e, 'NO_BACKEND'));
  });

  it('sums segments (the gradient of gather) exactly as the masked sums of the stock kernel, ids out of range skipped, no leak', async () => {
    await install();
    const rng = (() => {
      let state = 7;
      return () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    })();
    const cases: Array<{ x: number[]; ids: number[]; segments: number }> = [
      { x: [40, 7], ids: [40], segments: 9 },
      { x: [4, 5, 3], ids: [4, 5], segments: 6 },
      { x: [30], ids: [30], segments: 4 },
    ];
    for (const c of cases) {
      const live = tf.memory().numTensors;
      const rows = c.ids.reduce((a, b) => a * b, 1);
      // Ids from -1 to segments: the first and last are out of range.
      const idValues = Array.from({ length: rows }, (_, i) => (i * 7) % (c.segments + 2) - 1);
      const x = tf.tensor(Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, rng), c.x, 'float32');
      const ids = tf.tensor(idValues, c.ids, 'int32');
      const got = tf.unsortedSegmentSum(x, ids as tf.Tensor1D, c.segments);
      const expected = tf.tidy(() =>
        tf.stack(Array.from({ length: c.segments }, (_, s) => {
          const mask = tf.cast(tf.equal(ids, s), 'float32');
          const shaped = tf.reshape(mask, [...c.ids, ...c.x.slice(c.ids.length).map(() => 1)]);
          return tf.sum(tf.mul(shaped, x), c.ids.map((_, a) => a));
        })),
      );
      expect(got.shape).toEqual([c.segments, ...c.x.slice(c.ids.length)]);
      expect(Array.from(got.dataSync())).toEqual(Array.from(expected.dataSync()));
      tf.dispose([x, ids, got, expected]);
      expect(tf.memory().numTensors).toBe(live);
    }
    // A NaN stays in its own segment (the stock kernel's masks, NaN x 0, spread it to every segment).
    const xn = tf.tensor2d([[Number.NaN, 1], [2, 3]]);
    const sn = tf.tensor1d([0, 1], 'int32');
    const yn = tf.unsortedSegmentSum(xn, sn, 2);
    expect(Array.from(yn.dataSync())).toEqual([Number.NaN, 1, 2, 3]);
    tf.dispose([xn, sn, yn]);
    // An int32 input keeps the stock kernel.
    const xi = tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32');
    const si = tf.tensor1d([1, 0, 1], 'int32');
    const yi = tf.unsortedSegmentSum(xi, si, 2);
    expect(Array.from(yi.dataSync())).toEqual([3, 4, 6, 8]);
    tf.dispose([xi, si, yi]);
  });
});
