/**
 * @rs/backend-cpu: the reference backend. Every other backend is compared against it by core's
 * conformance suite. It runs anywhere (plain JavaScript) and is correct rather than fast.
 */
import '@tensorflow/tfjs-backend-cpu';
import { registerBackend, tf, DENSE_KERNEL, type BackendInfo } from '@rs/core';

const INFO: BackendInfo = {
  name: 'cpu',
  package: '@rs/backend-cpu',
  capabilities: { reference: true, threads: 1, simd: false },
};

/**
 * Registers the CPU backend with @rs/core and makes it active.
 *
 * @example
 * import { install } from '@rs/backend-cpu';
 * await install();
 */
export async function install(options: { activate?: boolean } = {}): Promise<BackendInfo> {
  registerBackend(INFO);
  registerDenseKernel();
  registerSegmentSum();
  // tfjs prints a banner recommending tfjs-node on the cpu backend's first use; that advice
  // does not apply here (tfjs-node cannot be installed without internet), so it is silenced.
  const backend = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (backend && 'firstUse' in backend) backend.firstUse = false;
  if (options.activate !== false) await tf.setBackend('cpu');
  return INFO;
}

type KernelFunc = (args: never) => unknown;
type KernelRegistry = {
  getKernel(name: string, backend: string): { kernelFunc: KernelFunc } | undefined;
  registerKernel(config: { kernelName: string; backendName: string; kernelFunc: unknown }): void;
  unregisterKernel(name: string, backend: string): void;
};
const registry = tf as unknown as KernelRegistry;

/** Core's dense kernel (DENSE_KERNEL): the cpu `_FusedMatMul`, which takes rank-2 operands as they are. */
function registerDenseKernel(): void {
  const fused = registry.getKernel('_FusedMatMul', 'cpu');
  if (fused && !registry.getKernel(DENSE_KERNEL, 'cpu')) registry.registerKernel({ kernelName: DENSE_KERNEL, backendName: 'cpu', kernelFunc: fused.kernelFunc });
}

type TensorInfo = { dataId: object; shape: number[]; dtype: string };
type SegmentSumArgs = { inputs: { x: TensorInfo; segmentIds: TensorInfo }; backend: { data: { get(dataId: object): { values: ArrayLike<number> } }; makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo }; attrs: { numSegments: number } };
/** tfjs's own kernel, kept for the dtypes `segmentSum` leaves to it. */
let stockSegmentSum: KernelFunc | undefined;

/**
 * `UnsortedSegmentSum` (the gradient of `gather`, so of every embedding) as one pass over the
 * rows. tfjs's cpu kernel builds, for each of the `numSegments` segments, a mask of all rows, a
 * masked copy of `x` and its sum: a character model's embedding gradient (83 segments, 512 rows)
 * took 165 ms of a 0.5 s training step. This loop adds each row into its segment in row order,
 * in float64 with one rounding at the end, as the stock kernel's sum does, so results are
 * identical (ids outside [0, numSegments) are skipped, as there; a NaN in one row no longer
 * spreads to every segment). Other dtypes keep the stock kernel.
 */
function segmentSum(args: SegmentSumArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, segmentIds } = inputs;
  if (x.dtype !== 'float32') return (stockSegmentSum as KernelFunc)(args as never) as TensorInfo;
  const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(segmentIds.shape.length).reduce((a, b) => a * b, 1);
  const values = backend.data.get(x.dataId).values;
  const ids = backend.data.get(segmentIds.dataId).values;
  const segments = attrs.numSegments;
  const sums = new Float64Array(segments * inner);
  for (let r = 0; r < rows; r++) {
    const id = ids[r];
    if (!(id >= 0 && id < segments)) continue;
    const from = r * inner;
    const to = id * inner;
    for (let j = 0; j < inner; j++) sums[to + j] += values[from + j];
  }
  return backend.makeTensorInfo([segments, ...x.shape.slice(segmentIds.shape.length)], 'float32', Float32Array.from(sums));
}

function registerSegmentSum(): void {
  const current = registry.getKernel('UnsortedSegmentSum', 'cpu');
  if (!current || current.kernelFunc === (segmentSum as unknown)) return;
  stockSegmentSum = current.kernelFunc;
  registry.unregisterKernel('UnsortedSegmentSum', 'cpu');
  registry.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc: segmentSum });
}

/** Backend name, for `useBackend('cpu')`. */
export const name = 'cpu';
