import { DatasetError, checkInteger, checkSeed } from './errors.js';
import { deriveSeed, mulberry32 } from './random.js';

/** One batch of {@link charBatches}. */
export interface CharBatch {
  /** `batchSize * context` token ids, one window after another. */
  x: Int32Array;
  /** Same layout as `x`, shifted by one: y[b, t] is the token after x[b, t]. */
  y: Int32Array;
  /** Start of each window in `ids`. */
  offsets: Int32Array;
  /** The step this batch was drawn for. */
  step: number;
}

/** Options of {@link charBatches}. */
export interface CharBatchOptions {
  /** Tokens per window, >= 1; the data must hold at least `context + 1` tokens. */
  context: number;
  /** Windows per batch, >= 1. */
  batchSize: number;
  /** Seed of the window offsets; 0 by default. */
  seed?: number;
}

/** Deterministic next-token batches; iterating yields steps 0, 1, 2, ... without end. */
export interface CharBatcher extends Iterable<CharBatch> {
  /** The batch of `step` (an integer >= 0); the same seed and step always give the same batch. */
  sample(step: number): CharBatch;
  readonly context: number;
  readonly batchSize: number;
}

/**
 * Next-character training batches from a token sequence: each window starts at a seeded random
 * offset, and `y` is `x` shifted by one position. Batches are random-access (`sample(step)`
 * depends only on seed and step), so a resumed run sees the same data.
 *
 * @example
 * const book = loadMobyDick();
 * const batches = charBatches(book.train, { context: 64, batchSize: 32, seed: 0 });
 * const { x, y } = batches.sample(0); // Int32Array(2048) each
 * for (const batch of batches) { if (batch.step === 100) break; }
 */
export function charBatches(ids: Int32Array, options: CharBatchOptions): CharBatcher {
  if (!(ids instanceof Int32Array)) {
    throw new DatasetError('INVALID_ARGUMENT', 'charBatches: ids must be an Int32Array of token ids.', {});
  }
  if (typeof options !== 'object' || options === null) {
    throw new DatasetError('INVALID_ARGUMENT', 'charBatches needs options { context, batchSize, seed? }.', {});
  }
  const context = checkInteger('charBatches options.context', options.context, 1);
  const batchSize = checkInteger('charBatches options.batchSize', options.batchSize, 1);
  const seed = checkSeed('charBatches options.seed', options.seed ?? 0);
  if (ids.length < context + 1) {
    throw new DatasetError(
      'INVALID_ARGUMENT',
      `charBatches: context ${context} needs at least ${context + 1} tokens (inputs plus the next token), but ids has ${ids.length}; use a shorter context or more data.`,
      { context, length: ids.length },
    );
  }
  // Windows start in [0, ids.length - context - 1], so the shifted target stays inside ids.
  const starts = ids.length - context;

  const sample = (step: number): CharBatch => {
    checkInteger('charBatches sample(step)', step, 0);
    const random = mulberry32(deriveSeed(seed, step));
    const x = new Int32Array(batchSize * context);
    const y = new Int32Array(batchSize * context);
    const offsets = new Int32Array(batchSize);
    for (let b = 0; b < batchSize; b++) {
      const offset = Math.floor(random() * starts);
      offsets[b] = offset;
      x.set(ids.subarray(offset, offset + context), b * context);
      y.set(ids.subarray(offset + 1, offset + context + 1), b * context);
    }
    return { x, y, offsets, step };
  };

  return {
    context,
    batchSize,
    sample,
    *[Symbol.iterator]() {
      for (let step = 0; ; step++) yield sample(step);
    },
  };
}
