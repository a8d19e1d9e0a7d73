import { sizeOf } from '@rs/core/extend';
import { getKernel, replaceKernel } from './registry';
import type { HeapBackend, KernelFunc } from './types';

/** Below this many elements per slice, an element loop copies faster than `set` on a subarray. */
const BLOCK_COPY_MIN = 8;

/**
 * GatherV2 as one block copy per gathered slice (rows of an embedding, tokens routed to an
 * expert, one expert's weight matrix). The stock wasm kernel computes every element's offset
 * through generic strides: gathering 16,384 rows of 128 floats took longer than a matmul over
 * them, and taking one expert's [128, 512] weights out of [64, 128, 512] cost as much as the
 * expert's matmul (bench/moe-scaling.mjs). Slices of a few elements are copied one element at a
 * time. Either way the output is stored with its own shape: the stock kernel stores a rank-4
 * buffer and returns a reshape of it, and a parameter gathered by a unit edit (a pruned bias)
 * then failed the fused kernels' rank-1 bias check, was copied on every call and rebuilt
 * XNNPACK's packed operator every call (a pruned LeNet ran 1.4x slower than the same weights in
 * fresh tensors). Dtypes other than float32/int32 stay on the stock kernel.
 */
export function patchGather(backendName: string): boolean {
  const original = getKernel('GatherV2', backendName);
  if (!original) return false;
  const kernelFunc: KernelFunc = (args) => {
    const { x, indices } = args.inputs;
    const attrs = (args.attrs ?? {}) as { axis: number; batchDims?: number };
    const backend = args.backend as HeapBackend;
    const rank = x.shape.length;
    const axis = attrs.axis < 0 ? attrs.axis + rank : attrs.axis;
    const batchDims = attrs.batchDims ?? 0;
    const sliceSize = sizeOf(x.shape.slice(axis + 1));
    if (typeof backend.typedArrayFromHeap !== 'function' || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32' || axis < batchDims) {
      return original.kernelFunc(args);
    }
    const batchSize = sizeOf(x.shape.slice(0, batchDims));
    const outerSize = sizeOf(x.shape.slice(batchDims, axis));
    const dimSize = x.shape[axis];
    const indexCount = sizeOf(indices.shape);
    const perBatch = batchSize === 0 ? 0 : indexCount / batchSize;
    const ids = Int32Array.from(backend.typedArrayFromHeap(indices) as Int32Array);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= dimSize) throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${dimSize - 1}]`);
    }
    const shape = [...x.shape.slice(0, axis), ...indices.shape.slice(batchDims), ...x.shape.slice(axis + 1)];
    const out = backend.makeOutput(shape, x.dtype);
    if (sizeOf(shape) === 0) return out;
    // Views after makeOutput: allocating may grow (and so detach) the wasm heap.
    const source = backend.typedArrayFromHeap(x) as Float32Array;
    const target = backend.typedArrayFromHeap(out) as Float32Array;
    let at = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let o = 0; o < outerSize; o++) {
        const base = (b * outerSize + o) * dimSize * sliceSize;
        for (let i = 0; i < perBatch; i++) {
          const from = base + ids[b * perBatch + i] * sliceSize;
          if (sliceSize < BLOCK_COPY_MIN) {
            for (let s = 0; s < sliceSize; s++) target[at + s] = source[from + s];
          } else {
            target.set(source.subarray(from, from + sliceSize), at);
          }
          at += sliceSize;
        }
      }
    }
    return out;
  };
  replaceKernel({ ...original, kernelFunc });
  return true;
}
