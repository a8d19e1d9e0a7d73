import type { OnnxRule } from '../rule';
import { pairOf, samePads, type Padding, type Pair } from './spatial';

type PoolAttrs = { poolSize: Pair; strides?: Pair; padding?: Padding };

/**
 * `maxPool2d` / `avgPool2d` as ONNX MaxPool / AveragePool on the NCHW form. With 'same' padding
 * TensorFlow's average ignores the padded cells, which is ONNX's `count_include_pad = 0`.
 */
function poolRule(op: string, onnxOp: 'MaxPool' | 'AveragePool'): OnnxRule<PoolAttrs> {
  return {
    op,
    emit(ctx) {
      const window = pairOf(ctx.node.attrs.poolSize, [1, 1]);
      const strides = pairOf(ctx.node.attrs.strides, window);
      const [, h, w] = ctx.inputs[0].shape as number[];
      const pads = ctx.node.attrs.padding === 'same' ? samePads([h, w], window, strides) : [0, 0, 0, 0];
      const attrs = onnxOp === 'AveragePool' ? { count_include_pad: 0 } : {};
      const y = ctx.op(onnxOp, [ctx.toNchw(ctx.inputNames[0])], { kernel_shape: window, strides, pads, ...attrs });
      return ctx.fromNchw(y);
    },
  };
}

export const maxPool2dRule = poolRule('maxPool2d', 'MaxPool');
export const avgPool2dRule = poolRule('avgPool2d', 'AveragePool');
