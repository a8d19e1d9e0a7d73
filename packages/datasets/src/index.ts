// The public surface of @rs/datasets: plain typed arrays with shapes, no tensor library.
export { DatasetError, isDatasetError } from './errors.js';
export type { DatasetErrorCode } from './errors.js';
export { MNIST_PIXELS, loadMnist, mnistSummary } from './mnist.js';
export type { LoadMnistOptions, MnistData, MnistSplit, MnistSummary } from './mnist.js';
export { twoSpirals } from './two-spirals.js';
export type { TwoSpirals, TwoSpiralsOptions } from './two-spirals.js';
export { splitMnist } from './split-mnist.js';
export type { SplitMnistOptions, SplitMnistSubset, SplitMnistTask } from './split-mnist.js';
export { permutePixels, permutedMnist } from './permuted-mnist.js';
export type { PermutedMnistOptions, PermutedMnistTask } from './permuted-mnist.js';
export { loadMobyDick } from './moby-dick.js';
export type { LoadMobyDickOptions, MobyDick } from './moby-dick.js';
export { charBatches } from './char-batches.js';
export type { CharBatch, CharBatchOptions, CharBatcher } from './char-batches.js';
export { loadNasBench201 } from './nas-bench-201.js';
export type { NasBench201, NasBench201Row } from './nas-bench-201.js';
