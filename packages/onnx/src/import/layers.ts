import { samePads } from '../rules/spatial';
import { unsupported, type Layout, type NodeContext, type ParamValue, type Value } from './builder';
import type { Constant } from './decode';

// Handlers of the ONNX ops that become IR nodes with parameters or windows: Gemm, MatMul, Conv,
// BatchNormalization, pooling, and the bias Add of an exported MatMul or Conv.

type Ir = Extract<Value, { kind: 'ir' }>;

export function irInput(ctx: NodeContext, i: number): Ir {
  const v = ctx.inputs[i];
  if (!v) unsupported(`input ${i} is missing`);
  if (v.kind !== 'ir') unsupported(`input ${i} is a constant where a computed tensor was expected`);
  return v;
}

export function constInput(ctx: NodeContext, i: number, what: string): Constant {
  const v = ctx.inputs[i];
  if (!v || v.kind !== 'const') unsupported(`${what} (input ${i}) must be an initializer or a constant`);
  return v.c;
}

function intAttr(ctx: NodeContext, name: string, fallback: number): number {
  const v = ctx.attrs.get(name);
  return typeof v === 'number' ? v : fallback;
}

function intsAttr(ctx: NodeContext, name: string): number[] | undefined {
  const v = ctx.attrs.get(name);
  return Array.isArray(v) ? v : undefined;
}

/** The IR id of a node with weights: its output's name when that is a graph output, else the module path of the weight. */
export function paramNodeId(ctx: NodeContext, weightName: string | undefined): string {
  if (ctx.builder.isGraphOutput(ctx.output)) return ctx.builder.id(ctx.output);
  const fromWeight = weightName?.replace(/\.(weight|bias|running_mean|running_var)$/, '');
  if (weightName && fromWeight && fromWeight !== weightName && !/^onnx::/.test(weightName)) return ctx.builder.id(fromWeight);
  return plainNodeId(ctx);
}

export function plainNodeId(ctx: NodeContext): string {
  if (ctx.builder.isGraphOutput(ctx.output)) return ctx.builder.id(ctx.output);
  const parts = ctx.name.split('/').filter((p) => p.length > 0);
  return ctx.builder.id(parts.length > 0 ? parts.slice(-2).join('.') : ctx.output);
}

function f32(data: ArrayLike<number>): Float32Array {
  return Float32Array.from(data);
}

/** A dense layer reading `x` with kernel `[K, N]` (`kernelAt(k, n)`), optional bias. */
function denseFrom(ctx: NodeContext, x: Ir, k: number, n: number, kernelAt: (k: number, n: number) => number, bias: Float32Array | undefined, weightName: string | undefined): Value {
  const kernel = new Float32Array(k * n);
  if (x.layout.kind === 'flat') {
    // ONNX features are in (c, h, w) order, ours in (h, w, c): row (h*W + w)*C + c reads row (c*H + h)*W + w.
    const { c: C, h: H, w: W } = x.layout;
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) {
          const ours = (h * W + w) * C + c;
          const theirs = (c * H + h) * W + w;
          for (let j = 0; j < n; j++) kernel[ours * n + j] = kernelAt(theirs, j);
        }
  } else {
    if (x.layout.kind !== 'plain') unsupported('a matrix product of an NCHW image tensor (flatten it first)');
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) kernel[i * n + j] = kernelAt(i, j);
  }
  const params: Record<string, ParamValue> = { kernel: { data: kernel, shape: [k, n] } };
  if (bias) params.bias = { data: bias, shape: [n] };
  const id = ctx.builder.add(paramNodeId(ctx, weightName), 'dense', [x.id], { units: n, useBias: bias !== undefined }, params);
  return { kind: 'ir', id, layout: { kind: 'plain' }, dims: [...x.dims.slice(0, -1), n], dtype: 'float32', single: ctx.uses[0] === 1 };
}

export function gemm(ctx: NodeContext): Value {
  const x = irInput(ctx, 0);
  const b = constInput(ctx, 1, 'the weight B');
  if (intAttr(ctx, 'transA', 0) !== 0) unsupported('transA = 1 (a transposed input)');
  if (x.dims.length !== 2 || b.dims.length !== 2) unsupported('Gemm on tensors that are not matrices');
  const alpha = Number(ctx.attrs.get('alpha') ?? 1);
  const beta = Number(ctx.attrs.get('beta') ?? 1);
  const transB = intAttr(ctx, 'transB', 0) === 1;
  const [k, n] = transB ? [b.dims[1], b.dims[0]] : b.dims;
  if (x.dims[1] !== null && x.dims[1] !== k) unsupported(`input width ${x.dims[1]} does not match B (${b.dims})`);
  const at = transB ? (i: number, j: number) => alpha * b.data[j * k + i] : (i: number, j: number) => alpha * b.data[i * n + j];
  let bias: Float32Array | undefined;
  const c = ctx.inputs[2];
  if (c) {
    if (c.kind !== 'const') unsupported('the bias C must be a constant');
    const size = c.c.data.length;
    if (size !== n && size !== 1) unsupported(`bias C of dims [${c.c.dims}] does not broadcast to [${n}] per row`);
    bias = f32(Array.from({ length: n }, (_, j) => beta * c.c.data[size === 1 ? 0 : j]));
  }
  return denseFrom(ctx, x, k, n, at, bias, ctx.weightNames[1]);
}

export function matMul(ctx: NodeContext): Value {
  const x = irInput(ctx, 0);
  const b = constInput(ctx, 1, 'the right operand');
  if (b.dims.length !== 2) unsupported(`MatMul by a constant of rank ${b.dims.length} (only 2-D weights)`);
  const [k, n] = b.dims;
  return denseFrom(ctx, x, k, n, (i, j) => b.data[i * n + j], undefined, ctx.weightNames[1]);
}

/**
 * `x + constant`: folded into the bias of the dense or convolution that computed `x` (PyTorch
 * exports Linear on rank-3 inputs as MatMul + Add), when nothing else reads that value.
 */
export function biasAdd(ctx: NodeContext, x: Ir, c: Constant): Value {
  const node = ctx.builder.node(x.id);
  const channels = x.layout.kind === 'nchw' ? x.dims[1] : x.dims[x.dims.length - 1];
  const perChannel = c.data.length === channels && c.dims.filter((d) => d !== 1).length <= 1 && (x.layout.kind !== 'nchw' || c.dims.slice(-2).every((d) => d === 1) || c.dims.length === 1);
  if (!node || !(node.op === 'dense' || node.op === 'conv2d') || node.attrs.useBias !== false || !x.single || !perChannel) {
    unsupported('adding a constant that is not the bias of the dense layer or convolution before it');
  }
  node.attrs.useBias = true;
  ctx.builder.setParam(node.id, 'bias', { data: f32(c.data), shape: [c.data.length] });
  return { ...x, single: ctx.uses[0] === 1 };
}

interface Window {
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right] */
  pads: number[];
  ho: number;
  wo: number;
}

function windowOf(ctx: NodeContext, x: Ir, kernel: [number, number]): Window {
  const [, , h, w] = x.dims as number[];
  if (x.layout.kind !== 'nchw' || x.dims.length !== 4 || h === null || w === null) unsupported('a 2-D window over a tensor that is not an image of known size');
  const dilations = intsAttr(ctx, 'dilations') ?? [1, 1];
  if (dilations.some((d) => d !== 1)) unsupported(`dilations [${dilations}]`);
  if (intAttr(ctx, 'ceil_mode', 0) !== 0) unsupported('ceil_mode = 1');
  const s = intsAttr(ctx, 'strides') ?? [1, 1];
  const strides: [number, number] = [s[0], s[1]];
  const autoPad = String(ctx.attrs.get('auto_pad') ?? 'NOTSET');
  let pads = intsAttr(ctx, 'pads') ?? [0, 0, 0, 0];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = samePads([h, w], kernel, strides);
    if (autoPad === 'SAME_LOWER') pads = [pads[2], pads[3], pads[0], pads[1]];
  } else if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  const ho = Math.floor((h + pads[0] + pads[2] - kernel[0]) / strides[0]) + 1;
  const wo = Math.floor((w + pads[1] + pads[3] - kernel[1]) / strides[1]) + 1;
  return { kernel, strides, pads, ho, wo };
}

/** 'valid', 'same' (when the pads are TensorFlow's), or explicit pads the caller must add. */
function paddingOf(x: Ir, win: Window): 'valid' | 'same' | 'explicit' {
  if (win.pads.every((p) => p === 0)) return 'valid';
  const same = samePads([x.dims[2] as number, x.dims[3] as number], win.kernel, win.strides);
  return same.every((p, i) => p === win.pads[i]) ? 'same' : 'explicit';
}

function padded(ctx: NodeContext, x: Ir, win: Window): string {
  const id = ctx.builder.id(`${plainNodeId(ctx)}.pad`);
  return ctx.builder.add(id, 'onnx.pad2d', [x.id], { rows: [win.pads[0], win.pads[2]], cols: [win.pads[1], win.pads[3]] });
}

export function conv(ctx: NodeContext): Value {
  const x = irInput(ctx, 0);
  const weight = constInput(ctx, 1, 'the weight');
  if (weight.dims.length !== 4) unsupported(`a convolution that is not 2-D (weight dims [${weight.dims}])`);
  const [f, cg, kh, kw] = weight.dims;
  const c = x.dims[1] as number;
  const group = intAttr(ctx, 'group', 1);
  const win = windowOf(ctx, x, [kh, kw]);
  const depthwise = group > 1 && group === c && f === c && cg === 1;
  if (group !== 1 && !depthwise) unsupported(`a grouped convolution (group ${group}, ${c} input and ${f} output channels) that is neither plain nor depthwise`);
  const bias = ctx.inputs[2] ? f32(constInput(ctx, 2, 'the bias').data) : undefined;
  const mode = paddingOf(x, win);
  const input = mode === 'explicit' ? padded(ctx, x, win) : x.id;
  const padding = mode === 'same' ? 'same' : 'valid';
  const kernel = new Float32Array(kh * kw * cg * f);
  // [F, C/g, kh, kw] -> [kh, kw, C/g, F] (for depthwise C/g = 1 and F = C: [kh, kw, C, 1] below)
  for (let o = 0; o < f; o++) for (let i = 0; i < cg; i++) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) kernel[((a * kw + b) * cg + i) * f + o] = weight.data[((o * cg + i) * kh + a) * kw + b];
  const params: Record<string, ParamValue> = { kernel: { data: kernel, shape: depthwise ? [kh, kw, c, 1] : [kh, kw, cg, f] } };
  if (bias) params.bias = { data: bias, shape: [f] };
  const id = paramNodeId(ctx, ctx.weightNames[1]);
  const attrs = { kernelSize: [kh, kw], strides: win.strides, padding, useBias: bias !== undefined };
  ctx.builder.add(id, depthwise ? 'onnx.depthwiseConv2d' : 'conv2d', [input], depthwise ? attrs : { filters: f, ...attrs }, params);
  return { kind: 'ir', id, layout: { kind: 'nchw' }, dims: [x.dims[0], f, win.ho, win.wo], dtype: 'float32', single: ctx.uses[0] === 1 };
}

export function batchNormalization(ctx: NodeContext, fuse: boolean): Value {
  const x = irInput(ctx, 0);
  if (intAttr(ctx, 'training_mode', 0) !== 0) unsupported('training_mode = 1 (export the model in eval mode)');
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => constInput(ctx, i, ['scale', 'B', 'mean', 'var'][i - 1]));
  const epsilon = Number(ctx.attrs.get('epsilon') ?? 1e-5);
  const momentum = Number(ctx.attrs.get('momentum') ?? 0.9);
  const channels = x.layout.kind === 'nchw' ? x.dims[1] : x.dims[x.dims.length - 1];
  if (x.dims.length > 2 && x.layout.kind !== 'nchw') unsupported('BatchNormalization over axis 1 of a tensor that is not an image');
  if (gamma.data.length !== channels) unsupported(`scale of ${gamma.data.length} values for ${channels} channels`);
  const producer = ctx.builder.node(x.id);
  if (fuse && x.single && producer && (producer.op === 'conv2d' || producer.op === 'onnx.depthwiseConv2d')) {
    // Folded: kernel * s per output channel, bias (b - mean) * s + beta, s = gamma / sqrt(var + eps).
    const kernel = ctx.builder.param(producer.id, 'kernel') as ParamValue;
    const n = gamma.data.length;
    const scale = Array.from({ length: n }, (_, k) => gamma.data[k] / Math.sqrt(variance.data[k] + epsilon));
    const folded = Float32Array.from(kernel.data, (v, i) => v * scale[i % n]);
    const bias = ctx.builder.param(producer.id, 'bias')?.data ?? new Float32Array(n);
    ctx.builder.setParam(producer.id, 'kernel', { data: folded, shape: kernel.shape });
    ctx.builder.setParam(producer.id, 'bias', { data: Float32Array.from({ length: n }, (_, k) => (bias[k] - mean.data[k]) * scale[k] + beta.data[k]), shape: [n] });
    producer.attrs.useBias = true;
    return { ...x, single: ctx.uses[0] === 1 };
  }
  const id = paramNodeId(ctx, ctx.weightNames[1]);
  ctx.builder.add(id, 'batchNorm', [x.id], { epsilon, momentum }, {
    gamma: { data: f32(gamma.data), shape: [gamma.data.length] },
    beta: { data: f32(beta.data), shape: [beta.data.length] },
    movingMean: { data: f32(mean.data), shape: [mean.data.length] },
    movingVariance: { data: f32(variance.data), shape: [variance.data.length] },
  });
  return { ...x, id, single: ctx.uses[0] === 1 };
}

export function pool(ctx: NodeContext, kind: 'max' | 'avg'): Value {
  const x = irInput(ctx, 0);
  const k = intsAttr(ctx, 'kernel_shape');
  if (!k || k.length !== 2) unsupported('a pooling window that is not 2-D');
  const win = windowOf(ctx, x, [k[0], k[1]]);
  let mode = paddingOf(x, win);
  const includePad = intAttr(ctx, 'count_include_pad', 0) === 1;
  if (mode === 'same' && kind === 'avg' && includePad) mode = 'explicit';
  if (mode === 'explicit' && kind === 'max') unsupported(`MaxPool with pads [${win.pads}] that are not TensorFlow's 'same' padding`);
  if (mode === 'explicit' && !includePad) unsupported(`AveragePool with pads [${win.pads}] and count_include_pad = 0`);
  const input = mode === 'explicit' ? padded(ctx, x, win) : x.id;
  const id = ctx.builder.add(plainNodeId(ctx), kind === 'max' ? 'maxPool2d' : 'avgPool2d', [input], { poolSize: win.kernel, strides: win.strides, padding: mode === 'same' ? 'same' : 'valid' });
  return { kind: 'ir', id, layout: { kind: 'nchw' }, dims: [x.dims[0], x.dims[1], win.ho, win.wo], dtype: 'float32', single: ctx.uses[0] === 1 };
}

export function globalAveragePool(ctx: NodeContext): Value {
  const x = irInput(ctx, 0);
  const [n, c, h, w] = x.dims;
  if (x.layout.kind !== 'nchw' || h === null || w === null) unsupported('GlobalAveragePool of a tensor that is not an image of known size');
  const id = ctx.builder.add(plainNodeId(ctx), 'avgPool2d', [x.id], { poolSize: [h, w], strides: [h, w], padding: 'valid' });
  return { kind: 'ir', id, layout: { kind: 'nchw' }, dims: [n, c, 1, 1], dtype: 'float32', single: ctx.uses[0] === 1 };
}

/** Flatten from axis 1 (ONNX Flatten, or a Reshape to [batch, -1]). */
export function flattenValue(ctx: NodeContext, x: Ir): Value {
  if (x.dims.length === 2) return { ...x, single: ctx.uses[0] === 1 };
  const id = ctx.builder.add(plainNodeId(ctx), 'flatten', [x.id], {});
  const rest = x.dims.slice(1) as number[];
  if (rest.some((d) => d === null)) unsupported('flattening a tensor with unknown dimensions');
  const size = rest.reduce((a, b) => a * b, 1);
  let layout: Layout = { kind: 'plain' };
  if (x.layout.kind === 'nchw' && rest[1] * rest[2] > 1) layout = { kind: 'flat', c: rest[0], h: rest[1], w: rest[2] };
  else if (x.layout.kind !== 'plain' && x.layout.kind !== 'nchw') unsupported('flattening a flattened image again');
  return { kind: 'ir', id, layout, dims: [x.dims[0], size], dtype: x.dtype, single: ctx.uses[0] === 1 };
}
