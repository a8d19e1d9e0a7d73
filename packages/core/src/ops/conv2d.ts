import { tf } from '../tf';
import { recordingGradients } from '../train/tape';
import type { ParamSpec } from '../ir/types';
import type { ParamAxis } from '../units/builder';
import type { OpSchema } from './schema';
import { checkOptionalBoolean, checkPositiveInt } from './attrs';
import { checkPadding, checkPair, inferWindow, pair } from './spatial';
import type { Padding, Pair } from './spatial';

export interface Conv2dAttrs {
  /** Output channels. */
  filters: number;
  kernelSize: Pair;
  /** Default 1. */
  strides?: Pair;
  /** Default 'valid'. */
  padding?: Padding;
  /** Default true. */
  useBias?: boolean;
}

/**
 * 2-D convolution over an NHWC input; kernel `[kh, kw, C, filters]`. Units: output channels.
 *
 * @example
 * { id: 'c1', op: 'conv2d', inputs: ['image'], attrs: { filters: 8, kernelSize: 3, padding: 'same' } }
 */
export const conv2d: OpSchema<Conv2dAttrs> = {
  name: 'conv2d',
  arity: 1,
  infer(attrs, [x], ctx) {
    const filters = checkPositiveInt(ctx, 'filters', attrs.filters);
    const kernel = checkPair(ctx, 'kernelSize', attrs.kernelSize);
    const strides = checkPair(ctx, 'strides', attrs.strides, [1, 1]);
    const padding = checkPadding(ctx, attrs.padding);
    checkOptionalBoolean(ctx, 'useBias', attrs.useBias);
    const { ho, wo } = inferWindow(ctx, x, kernel, strides, padding, 'kernel');
    return { shape: [x.shape[0], ho, wo, filters], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const [kh, kw] = pair(attrs.kernelSize, [1, 1]);
    const c = x.shape[3] as number;
    const specs: Record<string, ParamSpec> = {
      kernel: {
        shape: [kh, kw, c, attrs.filters],
        init: { kind: 'glorotUniform', fanIn: kh * kw * c, fanOut: kh * kw * attrs.filters },
      },
    };
    if (attrs.useBias !== false) specs.bias = { shape: [attrs.filters], init: { kind: 'zeros' }, role: 'bias' };
    return specs;
  },
  forward([x], params, attrs) {
    const strides = pair(attrs.strides, [1, 1]);
    const pad = attrs.padding ?? 'valid';
    if (attrs.useBias === false) return tf.conv2d(x as tf.Tensor4D, params.kernel as tf.Tensor4D, strides, pad);
    // Under a gradient tape, a convolution plus an add: tfjs's fused convolution computes every
    // gradient eagerly, the input's too, which nothing needs for a first layer (the input batch);
    // the plain convolution's gradients are taken only where needed.
    if (recordingGradients()) return tf.add(tf.conv2d(x as tf.Tensor4D, params.kernel as tf.Tensor4D, strides, pad), params.bias);
    // Inference: the bias fused into the convolution: a separate broadcast add over the whole
    // output cost as much as the convolution itself on wasm (bench/dynamic-exit-cost.mjs).
    return tf.fused.conv2d({ x: x as tf.Tensor4D, filter: params.kernel as tf.Tensor4D, strides, pad, bias: params.bias });
  },
  units(u) {
    u.consume(u.input(0), 'kernel', 2);
    const axes: ParamAxis[] = [{ param: 'kernel', axis: 3 }];
    if (u.attrs.useBias !== false) axes.push({ param: 'bias', axis: 0 });
    return u.source('out', u.attrs.filters, axes);
  },
  flops(attrs, [x], output) {
    const [kh, kw] = pair(attrs.kernelSize, [1, 1]);
    const c = x.shape[3] as number;
    const [, ho, wo] = output.shape as number[];
    const positions = ho * wo * attrs.filters;
    return positions * (2 * kh * kw * c + (attrs.useBias !== false ? 1 : 0));
  },
  syncAttrs(attrs, shapes) {
    return { ...attrs, filters: shapes.kernel[3] };
  },
};
