/**
 * Convolution and pooling in native code (NHWC, the layout core's conv2d and pooling ops use):
 * Conv2D, FusedConv2D (bias and activation applied on the output in the same call),
 * Conv2DBackpropInput, Conv2DBackpropFilter, MaxPool, MaxPoolGrad, AvgPool and AvgPoolGrad.
 * Convolutions are im2col + GEMM (rs_conv2d*, native/rsnative.c). Other cases (NCHW, dilated
 * gradients, prelu, other dtypes) fall back to the cpu kernel, which also reports bad shapes.
 */
import { tf } from '@rs/core';
import { allFloat32, f32, native, output, sizeOf, withFallback, type KernelArgs, type KernelConfig, type TensorInfo } from './common';
import { ACTIVATIONS, biasMode } from './matmul';

type Conv2DInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
type Pair = number | [number, number];
type Pad = Parameters<typeof tf.backend_util.computeConv2DInfo>[4];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** rs_conv2d's geometry: N H W C KH KW OC OH OW SH SW PT PL DH DW. */
function convGeometry(info: Conv2DInfo): Int32Array {
  return Int32Array.from([
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth, info.outChannels,
    info.outHeight, info.outWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, info.dilationHeight, info.dilationWidth,
  ]);
}

/** The convolution geometry for NHWC, or undefined where native code does not apply (the cpu kernel takes over). */
function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown> | undefined, dilations: Pair = 1): Conv2DInfo | undefined {
  if ((attrs?.dataFormat ?? 'NHWC') !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return undefined;
  try {
    return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number], attrs?.strides as Pair, dilations, attrs?.pad as Pad, attrs?.dimRoundingMode as Rounding, false, 'channelsLast');
  } catch {
    return undefined;
  }
}

function failed(what: string): never {
  throw new Error(`[OUT_OF_MEMORY] @rs/backend-native: ${what} could not allocate its im2col buffer.`);
}

function conv(args: KernelArgs, fused: boolean): TensorInfo | undefined {
  const { inputs, backend, attrs } = args;
  const { x, filter, bias, preluActivationWeights } = inputs;
  if (!x || !filter || preluActivationWeights || !allFloat32(backend, x, filter)) return undefined;
  if (bias && !allFloat32(backend, bias)) return undefined;
  const act = fused ? ACTIVATIONS[String(attrs?.activation ?? 'linear')] : 0;
  if (act === undefined) return undefined;
  const info = convInfo(x.shape, filter.shape, attrs, (attrs?.dilations as Pair | undefined) ?? 1);
  if (!info || info.inChannels !== filter.shape[2]) return undefined;
  const mode = biasMode(bias, info.outChannels);
  if (mode === undefined || (bias && bias.shape.length > 4)) return undefined;
  const out = output(sizeOf(info.outShape));
  const { lib, useBlas } = native();
  const ok = lib.conv2d(f32(backend, x), f32(backend, filter), out, convGeometry(info), bias ? f32(backend, bias) : null, mode, act, Number(attrs?.leakyreluAlpha ?? 0.2), useBlas);
  if (!ok) failed(fused ? 'FusedConv2D' : 'Conv2D');
  return backend.makeTensorInfo([...info.outShape], 'float32', out);
}

function convBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { dy, filter } = inputs;
  const inputShape = attrs?.inputShape as number[] | undefined;
  if (!dy || !filter || !inputShape || !allFloat32(backend, dy, filter)) return undefined;
  const info = convInfo(inputShape, filter.shape, attrs);
  if (!info || dy.shape.join() !== info.outShape.join()) return undefined;
  const dx = output(sizeOf(inputShape));
  const { lib, useBlas } = native();
  if (!lib.conv2dGradInput(f32(backend, dy), f32(backend, filter), dx, convGeometry(info), useBlas)) failed('Conv2DBackpropInput');
  return backend.makeTensorInfo([...inputShape], 'float32', dx);
}

function convBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { x, dy } = inputs;
  const filterShape = attrs?.filterShape as number[] | undefined;
  if (!x || !dy || !filterShape || !allFloat32(backend, x, dy)) return undefined;
  const info = convInfo(x.shape, filterShape, attrs);
  if (!info || dy.shape.join() !== info.outShape.join()) return undefined;
  const dw = output(sizeOf(filterShape));
  const { lib, useBlas } = native();
  if (!lib.conv2dGradFilter(f32(backend, x), f32(backend, dy), dw, convGeometry(info), useBlas)) failed('Conv2DBackpropFilter');
  return backend.makeTensorInfo([...filterShape], 'float32', dw);
}

/** rs_pool's geometry (N H W C KH KW OH OW SH SW PT PL), or undefined where native code does not apply. */
function poolGeometry(x: TensorInfo, attrs: Record<string, unknown> | undefined): { g: Int32Array; outShape: number[] } | undefined {
  if (x.shape.length !== 4) return undefined;
  let info: Conv2DInfo;
  try {
    info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], attrs?.filterSize as Pair, attrs?.strides as Pair, 1, attrs?.pad as Pad, attrs?.dimRoundingMode as Rounding);
  } catch {
    return undefined;
  }
  const g = Int32Array.from([info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth, info.outHeight, info.outWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left]);
  return { g, outShape: [...info.outShape] };
}

function pool(isMax: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined => {
    const { x } = inputs;
    if (!x || !allFloat32(backend, x)) return undefined;
    const geo = poolGeometry(x, attrs);
    if (!geo) return undefined;
    const out = output(sizeOf(geo.outShape));
    if (out.length > 0) native().lib.pool(isMax ? 1 : 0, f32(backend, x), out, geo.g);
    return backend.makeTensorInfo(geo.outShape, 'float32', out);
  };
}

function poolGrad(isMax: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined => {
    const { dy, input } = inputs;
    if (!dy || !input || !allFloat32(backend, dy, input)) return undefined;
    const geo = poolGeometry(input, attrs);
    if (!geo || dy.shape.join() !== geo.outShape.join()) return undefined;
    const dx = output(sizeOf(input.shape));
    if (dx.length > 0) native().lib.poolGrad(isMax ? 1 : 0, f32(backend, dy), isMax ? f32(backend, input) : null, dx, geo.g);
    return backend.makeTensorInfo([...input.shape], 'float32', dx);
  };
}

export function convKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: 'Conv2D', backendName, kernelFunc: withFallback('Conv2D', (args) => conv(args, false)) },
    { kernelName: 'FusedConv2D', backendName, kernelFunc: withFallback('FusedConv2D', (args) => conv(args, true)) },
    { kernelName: 'Conv2DBackpropInput', backendName, kernelFunc: withFallback('Conv2DBackpropInput', convBackpropInput) },
    { kernelName: 'Conv2DBackpropFilter', backendName, kernelFunc: withFallback('Conv2DBackpropFilter', convBackpropFilter) },
    { kernelName: 'MaxPool', backendName, kernelFunc: withFallback('MaxPool', pool(true)) },
    { kernelName: 'MaxPoolGrad', backendName, kernelFunc: withFallback('MaxPoolGrad', poolGrad(true)) },
    { kernelName: 'AvgPool', backendName, kernelFunc: withFallback('AvgPool', pool(false)) },
    { kernelName: 'AvgPoolGrad', backendName, kernelFunc: withFallback('AvgPoolGrad', poolGrad(false)) },
  ];
}
