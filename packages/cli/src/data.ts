import { tf, type Model, type Shape, type Tensor } from '@rs/core';
import { loadMnist, twoSpirals, MNIST_PIXELS } from '@rs/datasets';
import { usage } from './errors';
import { choice, number } from './options';

export const DATASETS = ['mnist', 'spirals'] as const;
export type DatasetName = (typeof DATASETS)[number];

/** One split as tensors (dispose with {@link disposeData}) plus the labels as an array. */
export interface Split {
  x: Tensor;
  y: Tensor;
  labels: Int32Array;
  count: number;
}

export interface LoadedData {
  name: DatasetName;
  /** Where the data comes from, in words. */
  source: string;
  /** Shape of one sample. */
  sample: number[];
  classes: number;
  train: Split;
  test: Split;
}

/** The raw arrays of a data set (no tensors yet). */
interface RawSplit {
  x: Float32Array;
  y: Int32Array;
  count: number;
}

function spiralSplits(): { train: RawSplit; test: RawSplit } {
  // Train: the classic 194 points. Test: the 192 points a twice-as-dense sampling adds between
  // them (odd indices along each spiral), which training never sees.
  const train = twoSpirals();
  const dense = twoSpirals({ pointsPerSpiral: 193 });
  const x = new Float32Array(192 * 2);
  const y = new Int32Array(192);
  let k = 0;
  for (let i = 1; i < 193; i += 2) {
    for (const row of [2 * i, 2 * i + 1]) {
      x[2 * k] = dense.x[2 * row];
      x[2 * k + 1] = dense.x[2 * row + 1];
      y[k] = dense.y[row];
      k += 1;
    }
  }
  return { train: { x: train.x, y: train.y, count: train.count }, test: { x, y, count: k } };
}

function limit(split: RawSplit, rows: number | undefined, stride: number): RawSplit {
  if (rows === undefined || rows >= split.count) return split;
  return { x: split.x.subarray(0, rows * stride), y: split.y.subarray(0, rows), count: rows };
}

/**
 * Loads a data set as tensors shaped for `inputShape` (the model's input, batch first): MNIST
 * digits go in flat (`[?, 784]`) or as images (`[?, 28, 28, 1]`).
 */
export function loadData(nameText: string, inputShape: Shape | undefined, options: { trainSize?: string; testSize?: string } = {}): LoadedData {
  const name = choice('--data', nameText, DATASETS);
  const trainRows = number('--train-size', options.trainSize, { integer: true, min: 1 }, true);
  const testRows = number('--test-size', options.testSize, { integer: true, min: 1 }, true);
  let raw: { train: RawSplit; test: RawSplit };
  let sample: number[];
  let source: string;
  let classes: number;
  if (name === 'mnist') {
    const mnist = loadMnist();
    raw = { train: mnist.train, test: mnist.test };
    source = mnist.source;
    classes = 10;
    sample = inputShape && inputShape.length === 4 ? [28, 28, 1] : [MNIST_PIXELS];
  } else {
    raw = spiralSplits();
    source = 'two spirals (Lang & Witbrock 1988): 194 training points; test: the 192 points between them';
    classes = 2;
    sample = [2];
  }
  const stride = sample.reduce((a, b) => a * b, 1);
  if (inputShape) {
    const wanted = inputShape.slice(1);
    if (wanted.length !== sample.length || wanted.some((d, i) => d !== sample[i])) {
      throw usage(`The model's input is [?, ${wanted.join(', ')}] but ${name} samples are [${sample.join(', ')}]: pick a model for this data set.`, {
        input: inputShape,
        data: name,
      });
    }
  }
  const make = (split: RawSplit): Split => ({
    x: tf.tensor(split.x, [split.count, ...sample], 'float32'),
    y: tf.tensor1d(split.y, 'int32'),
    labels: split.y,
    count: split.count,
  });
  return { name, source, sample, classes, train: make(limit(raw.train, trainRows, stride)), test: make(limit(raw.test, testRows, stride)) };
}

export function disposeData(data: LoadedData | undefined): void {
  if (!data) return;
  tf.dispose([data.train.x, data.train.y, data.test.x, data.test.y]);
}

/** The model's first input shape. */
export function inputShapeOf(model: Model): Shape {
  return model.graph.inputs[0].shape;
}
