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

/** Core's dense kernel (DENSE_KERNEL): the cpu `_FusedMatMul`, which takes rank-2 operands as they are. */
function registerDenseKernel(): void {
  const registry = tf as unknown as { getKernel(name: string, backend: string): { kernelFunc: unknown } | undefined; registerKernel(config: { kernelName: string; backendName: string; kernelFunc: unknown }): void };
  const fused = registry.getKernel('_FusedMatMul', 'cpu');
  if (fused && !registry.getKernel(DENSE_KERNEL, 'cpu')) registry.registerKernel({ kernelName: DENSE_KERNEL, backendName: 'cpu', kernelFunc: fused.kernelFunc });
}

type KernelRegistry = {
  getKernel(name: string, backend: string): { kernelFunc: (args: never) => unknown } | undefined;
  registerKernel(config: { kernelName: string; backendName: string; kernelFunc: unknown }): void;
  unregisterKernel(name: string, backend: string): void;
};
type TensorInfo = { dataId: object; shape: number[]; dtype: string };
type CpuBackend = { data: { get(dataId: object): { values: ArrayLike<number> } }; makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo };
let segmentSumInstalled = false;

/**
 * `UnsortedSegmentSum` (the gradient of `gather`, so of every embedding) as one pass over the
 * rows. tfjs's cpu kernel builds, for each of the `numSegments` segments, a mask of all rows, a
 * masked copy of `x` and its sum: a character model's embedding gradient (83 segments, 512 rows)
 * took 165 ms of a 0.5 s training step. This loop adds each row into its segment in row order,
 * in float64 with one rounding at the end, as the stock kernel's sum does, so results are identical (ids outside
 * [0, numSegments) are skipped, as there; a NaN in one row no longer spreads to every segment).
 * Other dtypes keep the stock kernel.
 */
function registerSegmentSum(): void {
  if (segmentSumInstalled) return;
  const registry = tf as unknown as KernelRegistry;
  const stock = registry.getKernel('UnsortedSegmentSum', 'cpu');
  if (!stock) return;
  const kernelFunc = (args: { inputs: { x: TensorInfo; segmentIds: TensorInfo }; backend: CpuBackend; attrs: { numSegments: number } }): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const { x, segmentIds } = inputs;
    if (x.dtype !== 'float32') return stock.kernelFunc(args as never) as TensorInfo;
    const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
    const inner = x.shape.slice(segmentIds.shape.length).reduce((a, b) => a * b, 1);
    const values = backend.data.get(x.dataId).values;
    const ids = backend.data.get(segmentIds.dataId).values;
    const segments = attrs.numSegments;
    // Sums in float64, rounded once at the end: what the stock kernel's sum does.
    const sums = new Float64Array(segments * inner);
    for (let r = 0; r < rows; r++) {
      const id = ids[r];
      if (!(id >= 0 && id < segments)) continue;
      const from = r * inner;
      const to = id * inner;
      for (let j = 0; j < inner; j++) sums[to + j] += values[from + j];
    }
    return backend.makeTensorInfo([segments, ...x.shape.slice(segmentIds.shape.length)], 'float32', Float32Array.from(sums));
  };
  registry.unregisterKernel('UnsortedSegmentSum', 'cpu');
  registry.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'cpu', kernelFunc });
  segmentSumInstalled = true;
}

/** Backend name, for `useBackend('cpu')`. */
export const name = 'cpu';
