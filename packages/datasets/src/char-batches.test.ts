import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { charBatches } from './char-batches.js';
import { isDatasetError } from './errors.js';
import { loadMobyDick } from './moby-dick.js';

describe('charBatches', () => {
  const book = loadMobyDick();
  const batches = charBatches(book.train, { context: 64, batchSize: 8, seed: 3 });

  it('yields batchSize * context ids with y shifted by one', () => {
    const batch = batches.sample(0);
    expect(batch.x.length).toBe(8 * 64);
    expect(batch.y.length).toBe(8 * 64);
    expect(batch.offsets.length).toBe(8);
    for (let b = 0; b < 8; b++) {
      const offset = batch.offsets[b];
      for (let t = 0; t < 64; t++) {
        expect(batch.x[b * 64 + t]).toBe(book.train[offset + t]);
        expect(batch.y[b * 64 + t]).toBe(book.train[offset + t + 1]);
        if (t < 63) expect(batch.y[b * 64 + t]).toBe(batch.x[b * 64 + t + 1]);
      }
    }
  });

  it('is deterministic for a seed and differs across steps and seeds', () => {
    const again = charBatches(book.train, { context: 64, batchSize: 8, seed: 3 });
    expect(again.sample(5)).toEqual(batches.sample(5));
    expect(batches.sample(1).offsets).not.toEqual(batches.sample(0).offsets);
    const other = charBatches(book.train, { context: 64, batchSize: 8, seed: 4 });
    expect(other.sample(0).offsets).not.toEqual(batches.sample(0).offsets);
    const iterated = [];
    for (const batch of again) {
      iterated.push(batch);
      if (iterated.length === 3) break;
    }
    expect(iterated.map((batch) => batch.step)).toEqual([0, 1, 2]);
    expect(iterated[2]).toEqual(batches.sample(2));
  });

  it('keeps every window, target included, inside the data (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 60 }),
        fc.integer({ min: 1, max: 59 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer(),
        fc.nat(1000),
        (length, context, batchSize, seed, step) => {
          fc.pre(context < length);
          const ids = Int32Array.from({ length }, (_, i) => i);
          const batch = charBatches(ids, { context, batchSize, seed }).sample(step);
          for (let k = 0; k < batch.x.length; k++) expect(batch.y[k]).toBe(batch.x[k] + 1);
          expect(Math.max(...batch.y)).toBeLessThan(length);
          expect(Math.min(...batch.x)).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 200, seed: 42 },
    );
  });

  it('rejects bad options with INVALID_ARGUMENT', () => {
    const ids = Int32Array.from([1, 2, 3, 4]);
    const bad: Array<() => unknown> = [
      () => charBatches(ids, { context: 4, batchSize: 1, seed: 0 }),
      () => charBatches(ids, { context: 0, batchSize: 1, seed: 0 }),
      () => charBatches(ids, { context: 2, batchSize: -1, seed: 0 }),
      () => charBatches(ids, { context: 2, batchSize: 1, seed: 0.5 }),
      () => charBatches([1, 2, 3] as unknown as Int32Array, { context: 1, batchSize: 1, seed: 0 }),
      () => charBatches(ids, { context: 2, batchSize: 1, seed: 0 }).sample(-1),
    ];
    for (const run of bad) {
      let caught: unknown;
      try {
        run();
      } catch (error) {
        caught = error;
      }
      expect(isDatasetError(caught, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect(() => charBatches(ids, { context: 4, batchSize: 1, seed: 0 })).toThrow(/at least 5 tokens/);
  });
});
