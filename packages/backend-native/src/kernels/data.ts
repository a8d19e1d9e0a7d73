/**
 * Data movement kernels in native code: Transpose (any permutation, 4-byte elements), GatherV2
 * (embedding lookups; batchDims 0, indices in range) and UnsortedSegmentSum (the embedding
 * gradient), each of which tfjs-backend-cpu runs in slow JavaScript; and PadV2 (the gradient of
 * a slice, e.g. of a position table), as block copies of contiguous rows (cpu's element loop
 * took 0.5 ms for a 64 x 128 table). Other cases (bool tensors,
 * batchDims, an index out of range, whose error cpu reports) fall back to the cpu kernel.
 */
import { tf } from '@rs/core';
import { native, output, sizeOf, withFallback, type KernelArgs, type KernelConfig, type StorageBackend, type TensorInfo } from './common';

/** The storage of a float32 or int32 tensor, or undefined for other dtypes. */
function words(backend: StorageBackend, t: TensorInfo | undefined): Float32Array | Int32Array | undefined {
  if (!t) return undefined;
  const v = backend.data.get(t.dataId).values;
  if (t.dtype === 'float32' && v instanceof Float32Array) return v;
  if (t.dtype === 'int32' && v instanceof Int32Array) return v;
  return undefined;
}

function like(values: Float32Array | Int32Array, n: number): Float32Array | Int32Array {
  return values instanceof Float32Array ? output(n) : new Int32Array(n);
}

function transpose({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { x } = inputs;
  const values = words(backend, x);
  if (!x || !values) return undefined;
  const rank = x.shape.length;
  const perm = (attrs?.perm as number[] | undefined) ?? [];
  if (rank === 0 || rank > 8 || perm.length !== rank) return undefined;
  const shape = perm.map((p) => x.shape[p]);
  const out = like(values, values.length);
  if (values.length > 0) native().lib.transpose(values, out, Int32Array.from(x.shape), Int32Array.from(perm), rank);
  return backend.makeTensorInfo(shape, x.dtype, out as Float32Array);
}

function gather({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { x, indices } = inputs;
  const values = words(backend, x);
  const ids = words(backend, indices);
  if (!x || !indices || !values || !(ids instanceof Int32Array) || Number(attrs?.batchDims ?? 0) !== 0) return undefined;
  let axis: number;
  try {
    axis = tf.util.parseAxisParam(attrs?.axis as number, x.shape)[0];
  } catch {
    return undefined;
  }
  const axisDim = x.shape[axis];
  for (let i = 0; i < ids.length; i++) if (ids[i] < 0 || ids[i] >= axisDim) return undefined; // cpu reports it
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const out = like(values, outer * ids.length * inner);
  if (out.length > 0) native().lib.gather(values, ids, out, outer, axisDim, ids.length, inner);
  return backend.makeTensorInfo(shape, x.dtype, out as Float32Array);
}

function segmentSum({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { x, segmentIds } = inputs;
  const values = words(backend, x);
  const ids = words(backend, segmentIds);
  if (!x || !segmentIds || !(values instanceof Float32Array) || !(ids instanceof Int32Array)) return undefined;
  const numSegments = Number(attrs?.numSegments);
  const lead = segmentIds.shape.length;
  if (!Number.isInteger(numSegments) || numSegments < 0 || x.shape.slice(0, lead).join() !== segmentIds.shape.join()) return undefined;
  const inner = sizeOf(x.shape.slice(lead));
  const out = output(numSegments * inner, true);
  if (ids.length > 0 && inner > 0) native().lib.segmentSum(values, ids, out, ids.length, inner, numSegments);
  return backend.makeTensorInfo([numSegments, ...x.shape.slice(lead)], 'float32', out);
}

function pad({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { x } = inputs;
  const values = words(backend, x);
  const paddings = attrs?.paddings as [number, number][] | undefined;
  if (!x || !values || !paddings || paddings.length !== x.shape.length || x.shape.length === 0) return undefined;
  if (paddings.some(([a, b]) => !Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0)) return undefined;
  const rank = x.shape.length;
  const shape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
  const out = like(values, sizeOf(shape));
  out.fill(Number(attrs?.constantValue ?? 0));
  const inner = x.shape[rank - 1];
  if (values.length === 0 || inner === 0) return backend.makeTensorInfo(shape, x.dtype, out as Float32Array);
  // Output strides, and the offset of the input's first element in the output.
  const strides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  const base = paddings.reduce((acc, [before], i) => acc + before * strides[i], 0);
  const rows = values.length / inner;
  const index = new Array<number>(rank - 1).fill(0);
  for (let r = 0; r < rows; r++) {
    let at = base;
    for (let i = 0; i < rank - 1; i++) at += index[i] * strides[i];
    out.set(values.subarray(r * inner, (r + 1) * inner), at);
    for (let i = rank - 2; i >= 0; i--) {
      if (++index[i] < x.shape[i]) break;
      index[i] = 0;
    }
  }
  return backend.makeTensorInfo(shape, x.dtype, out as Float32Array);
}

export function dataKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: 'Transpose', backendName, kernelFunc: withFallback('Transpose', transpose) },
    { kernelName: 'GatherV2', backendName, kernelFunc: withFallback('GatherV2', gather) },
    { kernelName: 'UnsortedSegmentSum', backendName, kernelFunc: withFallback('UnsortedSegmentSum', segmentSum) },
    { kernelName: 'PadV2', backendName, kernelFunc: withFallback('PadV2', pad) },
  ];
}
