import { replaceKernel } from './registry';
import type { KernelFunc } from './types';

/**
 * UnsortedSegmentSum (the gradient of gather, hence of every embedding) as one linear pass.
 * tfjs-backend-cpu builds it from a mask per segment (numSegments passes over the data), which
 * took seconds per step for a character vocabulary; this is O(size of x).
 */
export function registerSegmentSum(backendName: string): void {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs;
    const numSegments = (attrs as { numSegments: number }).numSegments;
    const values = backend.readSync(x.dataId) as ArrayLike<number>;
    const ids = backend.readSync(segmentIds.dataId) as ArrayLike<number>;
    const count = ids.length;
    const inner = count === 0 ? 0 : values.length / count;
    const out = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
    for (let i = 0; i < count; i++) {
      const segment = ids[i];
      // Out-of-range ids are dropped, as in TensorFlow.
      if (segment < 0 || segment >= numSegments) continue;
      const from = i * inner;
      const to = segment * inner;
      for (let j = 0; j < inner; j++) out[to + j] += values[from + j];
    }
    const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
    return { dataId: backend.write(out, shape, x.dtype), shape, dtype: x.dtype };
  };
  replaceKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc });
}
