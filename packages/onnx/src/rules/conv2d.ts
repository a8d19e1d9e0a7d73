import type { OnnxRule } from '../rule';
import { samePads, pairOf, type Padding, type Pair } from './spatial';

/**
 * `conv2d`: core is NHWC with a `[kh, kw, C, F]` kernel; ONNX Conv is NCHW with `[F, C, kh, kw]`.
 * The kernel is transposed once at export time, the activation through a shared Transpose (and
 * consecutive NCHW ops reuse it). 'same' padding is TensorFlow's: the odd pixel goes after.
 */
export const conv2dRule: OnnxRule<{ filters: number; kernelSize: Pair; strides?: Pair; padding?: Padding; useBias?: boolean }> = {
  op: 'conv2d',
  emit(ctx) {
    const [kh, kw, c, f] = ctx.params.kernel;
    const kernel = ctx.paramValues('kernel');
    const oihw = new Float32Array(kernel.length);
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++)
        for (let ci = 0; ci < c; ci++)
          for (let fo = 0; fo < f; fo++) oihw[((fo * c + ci) * kh + i) * kw + j] = kernel[((i * kw + j) * c + ci) * f + fo];
    const strides = pairOf(ctx.node.attrs.strides, [1, 1]);
    const [, h, w] = ctx.inputs[0].shape as number[];
    const pads = ctx.node.attrs.padding === 'same' ? samePads([h, w], [kh, kw], strides) : [0, 0, 0, 0];
    const inputs = [ctx.toNchw(ctx.inputNames[0]), ctx.constant(oihw, [f, c, kh, kw])];
    if (ctx.node.attrs.useBias !== false) inputs.push(ctx.param('bias'));
    const y = ctx.op('Conv', inputs, { kernel_shape: [kh, kw], strides, pads, dilations: [1, 1], group: 1 });
    return ctx.fromNchw(y);
  },
};
