import { tf, formatShape, type OpRegistry, type ParamSpec } from '@rs/core';
import { elementwiseFlops, elementwiseInfer, type InferContext, type OnnxRule, type OpSchema } from '@rs/core/extend';
import { samePads } from '../rules/spatial';

// Ops that imported models need and @rs/core does not have: PyTorch's symmetric padding, its
// depthwise convolution (Conv with group = channels) and its ReLU6 (Clip). Each declares its
// units like core's ops, so unit groups run through them, and brings its ONNX lowering.

type Pair = [number, number];

function checkPair(ctx: InferContext, name: string, value: unknown): Pair {
  const ok = Array.isArray(value) && value.length === 2 && value.every((v) => Number.isInteger(v) && v >= 0);
  if (!ok) ctx.failAttrs(`${name} must be a pair of non-negative integers, got ${JSON.stringify(value)}`);
  return value as Pair;
}

function checkImage(ctx: InferContext, shape: readonly (number | null)[]): number[] {
  if (shape.length !== 4 || shape.slice(1).some((d) => d === null)) ctx.fail(`expects an NHWC input with known H, W and C, got ${formatShape(shape)}`);
  return shape.slice(1) as number[];
}

export interface Pad2dAttrs {
  /** Rows added before and after (top, bottom). */
  rows: Pair;
  /** Columns added before and after (left, right). */
  cols: Pair;
}

/**
 * `onnx.pad2d`: zero padding of an NHWC tensor's H and W (PyTorch's `padding=` on a convolution,
 * which pads both sides where TensorFlow's 'same' puts the odd pixel after). Units pass through.
 */
export const pad2d: OpSchema<Pad2dAttrs> = {
  name: 'onnx.pad2d',
  arity: 1,
  infer(attrs, [x], ctx) {
    const rows = checkPair(ctx, 'rows', attrs.rows);
    const cols = checkPair(ctx, 'cols', attrs.cols);
    const [h, w, c] = checkImage(ctx, x.shape);
    return { shape: [x.shape[0], h + rows[0] + rows[1], w + cols[0] + cols[1], c], dtype: x.dtype };
  },
  forward([x], _params, attrs) {
    return tf.pad(x, [[0, 0], attrs.rows, attrs.cols, [0, 0]]);
  },
  units: (u) => u.input(0),
  flops: () => 0,
};

export interface DepthwiseConv2dAttrs {
  kernelSize: Pair;
  /** Default [1, 1]. */
  strides?: Pair;
  /** Default 'valid' (pad with `onnx.pad2d` first for PyTorch's padding). */
  padding?: 'valid' | 'same';
  /** Default true. */
  useBias?: boolean;
}

/**
 * `onnx.depthwiseConv2d`: one `[kh, kw]` filter per channel (ONNX Conv with group = C and one
 * output per group), kernel `[kh, kw, C, 1]`. Output channel c reads only input channel c, so the
 * channels are the input's units (like batchNorm) and the kernel and bias are indexed by them.
 */
export const depthwiseConv2d: OpSchema<DepthwiseConv2dAttrs> = {
  name: 'onnx.depthwiseConv2d',
  arity: 1,
  infer(attrs, [x], ctx) {
    const [kh, kw] = checkPair(ctx, 'kernelSize', attrs.kernelSize);
    const [sh, sw] = attrs.strides === undefined ? [1, 1] : checkPair(ctx, 'strides', attrs.strides);
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1) ctx.failAttrs('kernelSize and strides must be positive');
    if (attrs.padding !== undefined && attrs.padding !== 'valid' && attrs.padding !== 'same') ctx.failAttrs(`padding must be 'valid' or 'same', got ${JSON.stringify(attrs.padding)}`);
    const [h, w, c] = checkImage(ctx, x.shape);
    const same = attrs.padding === 'same';
    const ho = same ? Math.ceil(h / sh) : Math.floor((h - kh) / sh) + 1;
    const wo = same ? Math.ceil(w / sw) : Math.floor((w - kw) / sw) + 1;
    if (ho < 1 || wo < 1) ctx.fail(`kernel ${kh}x${kw} does not fit the input`);
    return { shape: [x.shape[0], ho, wo, c], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const [kh, kw] = attrs.kernelSize;
    const c = x.shape[3] as number;
    const specs: Record<string, ParamSpec> = {
      kernel: { shape: [kh, kw, c, 1], init: { kind: 'glorotUniform', fanIn: kh * kw, fanOut: kh * kw } },
    };
    if (attrs.useBias !== false) specs.bias = { shape: [c], init: { kind: 'zeros' }, role: 'bias' };
    return specs;
  },
  forward([x], params, attrs) {
    const y = tf.depthwiseConv2d(x as tf.Tensor4D, params.kernel as tf.Tensor4D, attrs.strides ?? [1, 1], attrs.padding ?? 'valid');
    return attrs.useBias === false ? y : tf.add(y, params.bias);
  },
  units(u) {
    const l = u.input(0);
    u.consume(l, 'kernel', 2);
    if (u.attrs.useBias !== false) u.consume(l, 'bias', 0);
    return l;
  },
  flops(attrs, _inputs, output) {
    const [kh, kw] = attrs.kernelSize;
    const [, ho, wo, c] = output.shape as number[];
    return ho * wo * c * (2 * kh * kw + (attrs.useBias !== false ? 1 : 0));
  },
};

export interface ClipAttrs {
  min: number;
  max: number;
}

/** `onnx.clip`: `min(max(x, min), max)` elementwise (PyTorch's ReLU6 is `{ min: 0, max: 6 }`). */
export const clip: OpSchema<ClipAttrs> = {
  name: 'onnx.clip',
  arity: 1,
  infer(attrs, inputs, ctx) {
    if (typeof attrs.min !== 'number' || typeof attrs.max !== 'number' || !(attrs.min <= attrs.max)) {
      ctx.failAttrs(`min and max must be numbers with min <= max, got ${JSON.stringify(attrs)}`);
    }
    return elementwiseInfer(attrs, inputs, ctx);
  },
  forward: ([x], _params, attrs) => tf.clipByValue(x, attrs.min, attrs.max),
  units: 'elementwise',
  flops: elementwiseFlops(2),
};

export interface ReduceMeanAttrs {
  /** Axes averaged away: neither the batch (0) nor the feature (last) axis. */
  axes: number[];
}

/**
 * `onnx.reduceMean`: the mean over inner axes, which are dropped (`x.mean(dim=1)` over a
 * sequence). The feature axis is kept, so units pass through.
 */
export const reduceMean: OpSchema<ReduceMeanAttrs> = {
  name: 'onnx.reduceMean',
  arity: 1,
  infer(attrs, [x], ctx) {
    const rank = x.shape.length;
    const ok = Array.isArray(attrs.axes) && attrs.axes.length > 0 && attrs.axes.every((a) => Number.isInteger(a) && a > 0 && a < rank - 1) && new Set(attrs.axes).size === attrs.axes.length;
    if (!ok) ctx.failAttrs(`axes must be distinct axes between the batch and the feature axis of a rank-${rank} input, got ${JSON.stringify(attrs.axes)}`);
    if (x.dtype !== 'float32') ctx.fail('expects a float32 input');
    return { shape: x.shape.filter((_, i) => !attrs.axes.includes(i)), dtype: 'float32' };
  },
  forward: ([x], _params, attrs) => tf.mean(x, attrs.axes),
  units: (u) => u.input(0),
  flops: (_attrs, [x]) => (x.shape.slice(1) as number[]).reduce((a, b) => a * b, 1),
};

export const reduceMeanRule: OnnxRule<ReduceMeanAttrs> = {
  op: reduceMean.name,
  emit: (ctx) => ctx.reduce('ReduceMean', ctx.inputNames[0], ctx.node.attrs.axes, false),
};

/** `onnx.geluErf`: the exact GELU, `0.5 * x * (1 + erf(x / sqrt 2))` (PyTorch's `nn.GELU()`); core's `gelu` is the tanh approximation. */
export const geluErf: OpSchema<Record<string, never>> = {
  name: 'onnx.geluErf',
  arity: 1,
  infer: elementwiseInfer,
  forward: ([x]) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.div(x, Math.SQRT2)), 1)),
  units: 'elementwise',
  flops: elementwiseFlops(5),
};

export const geluErfRule: OnnxRule<Record<string, never>> = {
  op: geluErf.name,
  emit(ctx) {
    const [x] = ctx.inputNames;
    const erf = ctx.op('Erf', [ctx.op('Div', [x, ctx.scalar(Math.SQRT2)])]);
    return ctx.op('Mul', [ctx.op('Mul', [x, ctx.op('Add', [erf, ctx.scalar(1)])]), ctx.scalar(0.5)]);
  },
};

export const pad2dRule: OnnxRule<Pad2dAttrs> = {
  op: pad2d.name,
  emit(ctx) {
    const { rows, cols } = ctx.node.attrs;
    return ctx.op('Pad', [ctx.inputNames[0], ctx.int64s([0, rows[0], cols[0], 0, 0, rows[1], cols[1], 0])], { mode: 'constant' });
  },
};

export const depthwiseConv2dRule: OnnxRule<DepthwiseConv2dAttrs> = {
  op: depthwiseConv2d.name,
  emit(ctx) {
    const [kh, kw, c] = ctx.params.kernel;
    const kernel = ctx.paramValues('kernel');
    const weight = new Float32Array(kernel.length);
    // [kh, kw, C, 1] -> [C, 1, kh, kw]
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let ci = 0; ci < c; ci++) weight[(ci * kh + i) * kw + j] = kernel[(i * kw + j) * c + ci];
    const strides = ctx.node.attrs.strides ?? [1, 1];
    const [, h, w] = ctx.inputs[0].shape as number[];
    const pads = ctx.node.attrs.padding === 'same' ? samePads([h, w], [kh, kw], strides) : [0, 0, 0, 0];
    const inputs = [ctx.toNchw(ctx.inputNames[0]), ctx.constant(weight, [c, 1, kh, kw])];
    if (ctx.node.attrs.useBias !== false) inputs.push(ctx.param('bias'));
    return ctx.fromNchw(ctx.op('Conv', inputs, { kernel_shape: [kh, kw], strides, pads, dilations: [1, 1], group: c }));
  },
};

export const clipRule: OnnxRule<ClipAttrs> = {
  op: clip.name,
  emit(ctx) {
    const { min, max } = ctx.node.attrs;
    return ctx.op('Clip', [ctx.inputNames[0], ctx.scalar(min), ctx.scalar(max)]);
  },
};

/**
 * Registers the ops imported models may need (`onnx.pad2d`, `onnx.depthwiseConv2d`,
 * `onnx.clip`, `onnx.reduceMean`, `onnx.geluErf`) and their ONNX lowerings. `importOnnx` does it on the registry it builds the model
 * with; call it on a registry that loads a saved imported model (the CLI does).
 *
 * @example
 * const model = await load('model.rsm', { registry: registerImportOps(createOpRegistry()) });
 */
export function registerImportOps(registry: OpRegistry): OpRegistry {
  registry.register(pad2d).provide('onnx', pad2d.name, pad2dRule);
  registry.register(depthwiseConv2d).provide('onnx', depthwiseConv2d.name, depthwiseConv2dRule);
  registry.register(clip).provide('onnx', clip.name, clipRule);
  registry.register(reduceMean).provide('onnx', reduceMean.name, reduceMeanRule);
  registry.register(geluErf).provide('onnx', geluErf.name, geluErfRule);
  return registry;
}
