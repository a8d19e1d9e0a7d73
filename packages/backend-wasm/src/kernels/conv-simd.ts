import { tf } from '@rs/core';
import { offset, registerSimdRuns, type SimdRun, type WasmBackend } from './simd';
import type { TensorInfo } from './types';

/**
 * The gradients of convolutions and pooling in the SIMD module (native/simd-kernels.c), for
 * NHWC float32 tensors:
 * - `Conv2DBackpropFilter`: stock wasm has none (the package's JavaScript loop, about 30 ms for
 *   LeNet-5's second layer at batch 64, served it). Up to 16 output channels, each filter
 *   value's sums stay in registers over every output position; wider filters are im2col + the
 *   module's GEMM (cols^T dy), a chunk of images at a time;
 * - `Conv2DBackpropInput`: the stock kernel is scalar; here im2col's transpose: dy W^T by the
 *   module's GEMM, added back into the image (col2im), a chunk of images at a time;
 * - `MaxPoolGrad`: the stock kernel is wrong at partial windows, so the cpu kernel served it
 *   through copies (110 ms for LeNet-5's first pool at batch 64);
 * - `AvgPoolGrad`: idem through copies where stock wasm lacks it.
 * Registered over whatever serves the kernel before (other layouts, dtypes and dilations, and
 * every call when the module is not attached, keep going there).
 */

type Info = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
type Pair = number | [number, number];
type Pad = Parameters<typeof tf.backend_util.computeConv2DInfo>[4];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

/** N H W C KH KW [OC] OH OW SH SW PT PL of a convolution or pool, or undefined when the module does not apply. */
function geometry(info: Info | undefined, withChannels: boolean): number[] | undefined {
  if (!info || info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const head = [info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth];
  return [...head, ...(withChannels ? [info.outChannels] : []), info.outHeight, info.outWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left];
}

function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): Info | undefined {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return undefined;
  try {
    return tf.backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, attrs.strides as Pair, 1, attrs.pad as Pad, attrs.dimRoundingMode as Rounding, false, 'channelsLast');
  } catch {
    return undefined; // the kernel registered before reports it
  }
}

function poolInfo(xShape: number[], attrs: Record<string, unknown>): Info | undefined {
  if (xShape.length !== 4) return undefined;
  try {
    return tf.backend_util.computePool2DInfo(xShape as Shape4, attrs.filterSize as Pair, attrs.strides as Pair, 1, attrs.pad as Pad, attrs.dimRoundingMode as Rounding);
  } catch {
    return undefined;
  }
}

/** Floats of the im2col scratch for one chunk of images: at most 4M (16 MiB of the wasm heap), at least one image. */
let colsMax = 1 << 22;
const chunkOf = (g: number[], perImage: number): number => Math.max(1, Math.min(g[0], Math.floor(colsMax / Math.max(1, perImage))));

/** Sets the im2col scratch budget (floats) and returns the previous one: tests use it to run several chunks on small inputs. */
export function setIm2colBudget(floats: number): number {
  const previous = colsMax;
  colsMax = floats;
  return previous;
}

/** Runs `body` with `floats.length` scratch buffers of those sizes on the wasm heap (undefined when one cannot be allocated). */
function withScratch<T>(backend: WasmBackend, floats: number[], body: (pointers: number[]) => T): T | undefined {
  const pointers: number[] = [];
  try {
    for (const n of floats) {
      const p = backend.wasm._malloc(Math.max(4, n * 4));
      if (!p) return undefined;
      pointers.push(p);
    }
    return body(pointers);
  } finally {
    for (const p of pointers) backend.wasm._free(p);
  }
}

const sameShape = (t: TensorInfo, shape: readonly number[]): boolean => t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
const float32 = (...ts: (TensorInfo | undefined)[]): boolean => ts.every((t) => t !== undefined && t.dtype === 'float32');

const filterGrad: SimdRun = (simd, backend, { inputs, attrs = {} }) => {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[] | undefined;
  if (!float32(x, dy) || !filterShape) return undefined;
  const info = convInfo(x.shape, filterShape, attrs);
  const g = geometry(info, true);
  if (!info || !g || !sameShape(dy, info.outShape)) return undefined;
  const [, , , c, kh, kw, oc, oh, ow] = g;
  if (oc <= 16) {
    const out = backend.makeOutput([...filterShape], 'float32');
    simd.rs_conv_grad_filter(offset(backend, x), offset(backend, dy), offset(backend, out), ...g);
    return out;
  }
  const k = kh * kw * c;
  const chunk = chunkOf(g, oh * ow * k);
  return withScratch(backend, [chunk * oh * ow * k, k * oc], ([cols, part]) => {
    const out = backend.makeOutput([...filterShape], 'float32');
    simd.rs_conv_grad_filter_gemm(offset(backend, x), offset(backend, dy), offset(backend, out), cols, part, chunk, ...g);
    return out;
  });
};

const inputGrad: SimdRun = (simd, backend, { inputs, attrs = {} }) => {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[] | undefined;
  if (!float32(dy, filter) || !inputShape) return undefined;
  const info = convInfo(inputShape, filter.shape, attrs);
  const g = geometry(info, true);
  if (!info || !g || !sameShape(dy, info.outShape)) return undefined;
  const [, , , c, kh, kw, oc, oh, ow] = g;
  const k = kh * kw * c;
  const chunk = chunkOf(g, oh * ow * k);
  return withScratch(backend, [k * oc, chunk * oh * ow * k], ([wt, cols]) => {
    const out = backend.makeOutput([...inputShape], 'float32');
    simd.rs_conv_grad_input_gemm(offset(backend, dy), offset(backend, filter), offset(backend, out), wt, cols, chunk, ...g);
    return out;
  });
};

const poolGrad =
  (isMax: boolean): SimdRun =>
  (simd, backend, { inputs, attrs = {} }) => {
    const { dy, input } = inputs;
    if (!float32(dy, input)) return undefined;
    const info = poolInfo(input.shape, attrs);
    const g = geometry(info, false);
    if (!info || !g || !sameShape(dy, info.outShape)) return undefined;
    const out = backend.makeOutput([...input.shape], 'float32');
    simd.rs_pool_grad(isMax ? 1 : 0, offset(backend, dy), isMax ? offset(backend, input) : 0, offset(backend, out), ...g);
    return out;
  };

/**
 * Registers the four gradient kernels over those registered so far for `backendName` (call it
 * after the cpu bridge has filled in the missing and wrong ones); returns their names.
 */
export function registerSimdConvKernels(backendName: string): string[] {
  return registerSimdRuns(backendName, { Conv2DBackpropFilter: filterGrad, Conv2DBackpropInput: inputGrad, MaxPoolGrad: poolGrad(true), AvgPoolGrad: poolGrad(false) });
}
