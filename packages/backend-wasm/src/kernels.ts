import { tf } from '@rs/core';

type TensorInfo = { dataId: object; shape: number[]; dtype: string };
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: KernelBackendLike; attrs?: Record<string, unknown> };
type KernelFunc = (args: KernelArgs) => TensorInfo | TensorInfo[];
interface KernelBackendLike {
  readSync(dataId: object): ArrayLike<number> | Uint8Array[];
  write(values: ArrayLike<number>, shape: number[], dtype: string): object;
  disposeData(dataId: object, force?: boolean): boolean;
}
interface KernelConfig {
  kernelName: string;
  backendName: string;
  kernelFunc: KernelFunc;
  setupFunc?: (backend: unknown) => void;
  disposeFunc?: (backend: unknown) => void;
}

const engineApi = tf as unknown as {
  getKernel(name: string, backend: string): KernelConfig | undefined;
  getKernelsForBackend(backend: string): KernelConfig[];
  registerKernel(config: KernelConfig): void;
  unregisterKernel(name: string, backend: string): void;
};

/**
 * The wasm BatchMatMul takes XNNPACK's fast path only when neither operand is transposed; a
 * transposed operand falls back to a naive loop 20-40x slower, and every matmul gradient has
 * one (shared/notes/tensorflow-js.md). Transposing the operand first with the wasm Transpose
 * kernel keeps every matmul on the fast path.
 */
export function patchTransposedMatMul(backendName: string): string[] {
  const patched: string[] = [];
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const original = engineApi.getKernel(name, backendName);
    if (!original) continue;
    const transpose = (x: TensorInfo, backend: KernelBackendLike): TensorInfo => {
      const rank = x.shape.length;
      const perm = [...Array(rank).keys()];
      [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
      const config = engineApi.getKernel('Transpose', backendName) as KernelConfig;
      return config.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
    };
    const kernelFunc: KernelFunc = (args) => {
      const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args);
      const temporaries: TensorInfo[] = [];
      const inputs = { ...args.inputs };
      if (attrs.transposeA) {
        inputs.a = transpose(args.inputs.a, args.backend);
        temporaries.push(inputs.a);
      }
      if (attrs.transposeB) {
        inputs.b = transpose(args.inputs.b, args.backend);
        temporaries.push(inputs.b);
      }
      try {
        return original.kernelFunc({ ...args, inputs, attrs: { ...attrs, transposeA: false, transposeB: false } });
      } finally {
        for (const t of temporaries) args.backend.disposeData(t.dataId);
      }
    };
    engineApi.unregisterKernel(name, backendName);
    engineApi.registerKernel({ ...original, kernelFunc });
    patched.push(name);
  }
  return patched;
}

/** A kernel that runs `cpuKernel` on copies of its inputs and writes the results back. */
function cpuBridge(cpuKernel: KernelConfig): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpu = tf.findBackend('cpu') as unknown as KernelBackendLike;
    const cpuInputs: Record<string, TensorInfo> = {};
    const created: object[] = [];
    try {
      for (const [name, t] of Object.entries(inputs)) {
        if (!t) continue;
        const dataId = cpu.write(backend.readSync(t.dataId) as ArrayLike<number>, t.shape, t.dtype);
        created.push(dataId);
        cpuInputs[name] = { dataId, shape: t.shape, dtype: t.dtype };
      }
      const out = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs });
      const outs = Array.isArray(out) ? out : [out];
      const results = outs.map((o) => {
        const values = cpu.readSync(o.dataId) as ArrayLike<number>;
        cpu.disposeData(o.dataId, true);
        return { dataId: backend.write(values, o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
      });
      return Array.isArray(out) ? results : results[0];
    } finally {
      for (const dataId of created) cpu.disposeData(dataId, true);
    }
  };
}

/**
 * Stock wasm kernels that give wrong results, found by the conformance suite; they are
 * replaced by the cpu bridge below. MaxPoolGrad drops the gradient of partial windows at the
 * right/bottom edge under 'same' padding (cpu, like TensorFlow, routes it to the window's max).
 */
export const WRONG_ON_WASM = ['MaxPoolGrad'] as const;

/**
 * Registers, for `backendName`, every kernel the cpu backend has and it lacks (for training:
 * Conv2DBackpropFilter, the depthwise backprops, UnsortedSegmentSum...). Each one copies its
 * inputs to the cpu backend, runs the cpu kernel, and writes the result back; values match cpu
 * exactly because they are cpu's.
 */
export function fillMissingKernels(backendName: string, replace: readonly string[] = []): string[] {
  for (const name of replace) if (engineApi.getKernel(name, backendName)) engineApi.unregisterKernel(name, backendName);
  const have = new Set(engineApi.getKernelsForBackend(backendName).map((k) => k.kernelName));
  const added: string[] = [];
  for (const cpuKernel of engineApi.getKernelsForBackend('cpu')) {
    if (have.has(cpuKernel.kernelName)) continue;
    const kernelFunc = cpuBridge(cpuKernel);
    engineApi.registerKernel({ kernelName: cpuKernel.kernelName, backendName, kernelFunc });
    added.push(cpuKernel.kernelName);
  }
  return added;
}

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
  if (engineApi.getKernel('UnsortedSegmentSum', backendName)) engineApi.unregisterKernel('UnsortedSegmentSum', backendName);
  engineApi.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc });
}

/**
 * Stock wasm Conv2D is wrong with 'same' padding when a stride exceeds the kernel size along an
 * axis (the padding it computes goes negative); found by the conformance suite. Those calls go
 * to the cpu kernel, every other one stays on XNNPACK.
 */
export function patchConv2D(backendName: string): void {
  const original = engineApi.getKernel('Conv2D', backendName);
  const cpu = engineApi.getKernel('Conv2D', 'cpu');
  if (!original || !cpu) return;
  const bridged = cpuBridge(cpu);
  const kernelFunc: KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as { pad?: unknown; strides?: number | [number, number] };
    const [kh, kw] = args.inputs.filter.shape;
    const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : (attrs.strides ?? [1, 1]);
    return attrs.pad === 'same' && (sh > kh || sw > kw) ? bridged(args) : original.kernelFunc(args);
  };
  engineApi.unregisterKernel('Conv2D', backendName);
  engineApi.registerKernel({ ...original, kernelFunc });
}

/**
 * Conv2DBackpropFilter (the kernel gradient of every convolution) as one pass over the output
 * positions with flat arrays. Stock wasm has no such kernel, and the cpu one (filled in above)
 * indexes element by element: about 1.1 s for a 3x3, 8-channel layer on 64 14x14 images, 80x
 * slower than this loop. NHWC with 'valid', 'same' or a symmetric numeric padding; anything
 * else stays on the cpu kernel.
 */
export function registerConv2DBackpropFilter(backendName: string): boolean {
  const fallback = engineApi.getKernel('Conv2DBackpropFilter', backendName) ?? engineApi.getKernel('Conv2DBackpropFilter', 'cpu');
  if (!fallback) return false;
  const bridged = fallback.backendName === backendName ? fallback.kernelFunc : cpuBridge(fallback);
  const kernelFunc: KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as { strides?: number | [number, number]; pad?: unknown; dataFormat?: string; filterShape: [number, number, number, number] };
    const { x, dy } = args.inputs;
    if ((attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') || !(attrs.pad === 'same' || attrs.pad === 'valid' || typeof attrs.pad === 'number') || x.dtype !== 'float32') {
      return bridged(args);
    }
    const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : (attrs.strides ?? [1, 1]);
    const [kh, kw, cin, cout] = attrs.filterShape;
    const [n, ih, iw] = x.shape;
    const [, oh, ow] = dy.shape;
    let top = 0;
    let left = 0;
    if (attrs.pad === 'same') {
      top = Math.floor(Math.max(0, (oh - 1) * sh + kh - ih) / 2);
      left = Math.floor(Math.max(0, (ow - 1) * sw + kw - iw) / 2);
    } else if (typeof attrs.pad === 'number') {
      top = attrs.pad;
      left = attrs.pad;
    }
    const xs = args.backend.readSync(x.dataId) as Float32Array;
    const ds = args.backend.readSync(dy.dataId) as Float32Array;
    const out = new Float32Array(kh * kw * cin * cout);
    for (let b = 0; b < n; b++) {
      for (let r = 0; r < oh; r++) {
        for (let c = 0; c < ow; c++) {
          const dyBase = ((b * oh + r) * ow + c) * cout;
          for (let i = 0; i < kh; i++) {
            const row = r * sh + i - top;
            if (row < 0 || row >= ih) continue;
            for (let j = 0; j < kw; j++) {
              const col = c * sw + j - left;
              if (col < 0 || col >= iw) continue;
              const xBase = ((b * ih + row) * iw + col) * cin;
              const wBase = (i * kw + j) * cin * cout;
              for (let ci = 0; ci < cin; ci++) {
                const v = xs[xBase + ci];
                if (v === 0) continue;
                const o = wBase + ci * cout;
                for (let co = 0; co < cout; co++) out[o + co] += v * ds[dyBase + co];
              }
            }
          }
        }
      }
    }
    const shape = [kh, kw, cin, cout];
    return { dataId: args.backend.write(out, shape, 'float32'), shape, dtype: 'float32' };
  };
  if (engineApi.getKernel('Conv2DBackpropFilter', backendName)) engineApi.unregisterKernel('Conv2DBackpropFilter', backendName);
  engineApi.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc });
  return true;
}

interface HeapBackend extends KernelBackendLike {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Below this many elements per gathered slice, the stock element loop is as fast. */
const MIN_GATHER_SLICE = 8;

/**
 * GatherV2 as one block copy per gathered slice (rows of an embedding, tokens routed to an
 * expert, one expert's weight matrix). The stock wasm kernel computes every element's offset
 * through generic strides: gathering 16,384 rows of 128 floats took longer than a matmul over
 * them, and taking one expert's [128, 512] weights out of [64, 128, 512] cost as much as the
 * expert's matmul (bench/moe-scaling.mjs). Small slices (scalars, short rows) and dtypes other
 * than float32/int32 stay on the stock kernel.
 */
export function patchGather(backendName: string): boolean {
  const original = engineApi.getKernel('GatherV2', backendName);
  if (!original) return false;
  const kernelFunc: KernelFunc = (args) => {
    const { x, indices } = args.inputs;
    const attrs = (args.attrs ?? {}) as { axis: number; batchDims?: number };
    const backend = args.backend as HeapBackend;
    const rank = x.shape.length;
    const axis = attrs.axis < 0 ? attrs.axis + rank : attrs.axis;
    const batchDims = attrs.batchDims ?? 0;
    const product = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);
    const sliceSize = product(x.shape.slice(axis + 1));
    if (typeof backend.typedArrayFromHeap !== 'function' || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32' || sliceSize < MIN_GATHER_SLICE || axis < batchDims) {
      return original.kernelFunc(args);
    }
    const batchSize = product(x.shape.slice(0, batchDims));
    const outerSize = product(x.shape.slice(batchDims, axis));
    const dimSize = x.shape[axis];
    const indexCount = product(indices.shape);
    const perBatch = batchSize === 0 ? 0 : indexCount / batchSize;
    const ids = Int32Array.from(backend.typedArrayFromHeap(indices) as Int32Array);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= dimSize) throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${dimSize - 1}]`);
    }
    const shape = [...x.shape.slice(0, axis), ...indices.shape.slice(batchDims), ...x.shape.slice(axis + 1)];
    const out = backend.makeOutput(shape, x.dtype);
    if (product(shape) === 0) return out;
    // Views after makeOutput: allocating may grow (and so detach) the wasm heap.
    const source = backend.typedArrayFromHeap(x) as Float32Array;
    const target = backend.typedArrayFromHeap(out) as Float32Array;
    let at = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let o = 0; o < outerSize; o++) {
        const base = (b * outerSize + o) * dimSize * sliceSize;
        for (let i = 0; i < perBatch; i++) {
          const from = base + ids[b * perBatch + i] * sliceSize;
          target.set(source.subarray(from, from + sliceSize), at);
          at += sliceSize;
        }
      }
    }
    return out;
  };
  engineApi.unregisterKernel('GatherV2', backendName);
  engineApi.registerKernel({ ...original, kernelFunc });
  return true;
}

/**
 * The wasm fused kernels (_FusedMatMul, FusedConv2D, FusedDepthwiseConv2D) check the rank of
 * the bias's *storage*, not of the tensor: a rank-1 bias that is a reshape of a larger buffer
 * (what a unit edit leaves behind: the kept units gathered as [outer, n, inner] and reshaped)
 * is rejected ("only supports rank-1 bias but got rank 4"). Such a bias is copied into a
 * buffer of its own first. Core fuses every dense and conv2d bias, so this is on the main path.
 */
export function patchFusedBias(backendName: string): string[] {
  const patched: string[] = [];
  for (const name of ['_FusedMatMul', 'FusedConv2D', 'FusedDepthwiseConv2D']) {
    const original = engineApi.getKernel(name, backendName);
    if (!original) continue;
    const kernelFunc: KernelFunc = (args) => {
      const bias = args.inputs.bias;
      const backend = args.backend as HeapBackend & { dataIdMap?: { get(id: object): { shape: number[] } | undefined } };
      const stored = bias && backend.dataIdMap?.get(bias.dataId);
      if (!bias || !stored || stored.shape.length === 1 || bias.shape.length !== 1 || typeof backend.typedArrayFromHeap !== 'function') {
        return original.kernelFunc(args);
      }
      const copy = backend.makeOutput([...bias.shape], bias.dtype);
      (backend.typedArrayFromHeap(copy) as Float32Array).set(backend.typedArrayFromHeap(bias) as Float32Array);
      try {
        return original.kernelFunc({ ...args, inputs: { ...args.inputs, bias: copy } });
      } finally {
        backend.disposeData(copy.dataId);
      }
    };
    engineApi.unregisterKernel(name, backendName);
    engineApi.registerKernel({ ...original, kernelFunc });
    patched.push(name);
  }
  return patched;
}
