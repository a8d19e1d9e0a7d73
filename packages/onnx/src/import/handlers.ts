import { unsupported, type NodeContext, type Value } from './builder';
import type { Constant } from './decode';
import { batchNormalization, biasAdd, constInput, conv, flattenValue, gemm, globalAveragePool, irInput, matMul, plainNodeId, pool } from './layers';

// The table of ONNX ops the import reads. Ops on constants only (shape arithmetic of PyTorch's
// exporter) are evaluated at import time; the others become IR nodes.

export type Handler = (ctx: NodeContext, options: { fuseBatchNorm: boolean }) => Value;

type Ir = Extract<Value, { kind: 'ir' }>;

function allConst(ctx: NodeContext): Constant[] | undefined {
  const values = ctx.inputs.filter((v): v is Value => v !== undefined);
  return values.every((v) => v.kind === 'const') ? values.map((v) => (v as { c: Constant }).c) : undefined;
}

function constant(dims: number[], data: ArrayLike<number>, kind: Constant['kind']): Value {
  return { kind: 'const', c: { dims, data: Float64Array.from(data), kind } };
}

/** Elementwise arithmetic on constants with numpy broadcasting. */
function foldBinary(a: Constant, b: Constant, f: (x: number, y: number) => number, intDivide = false): Value {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: number[]) => [...Array(rank - d.length).fill(1), ...d];
  const [da, db] = [pad(a.dims), pad(b.dims)];
  const dims = da.map((d, i) => Math.max(d, db[i]));
  const size = dims.reduce((x, y) => x * y, 1);
  const out = new Float64Array(size);
  const index = (d: number[], flat: number) => {
    let offset = 0;
    let rest = flat;
    let stride = 1;
    for (let i = rank - 1; i >= 0; i--) {
      const coordinate = rest % dims[i];
      rest = Math.floor(rest / dims[i]);
      if (d[i] !== 1) offset += coordinate * stride;
      stride *= d[i];
    }
    return offset;
  };
  const kind = a.kind === 'int' && b.kind === 'int' ? 'int' : 'float';
  for (let i = 0; i < size; i++) {
    const v = f(a.data[index(da, i)], b.data[index(db, i)]);
    out[i] = kind === 'int' && intDivide ? Math.trunc(v) : v;
  }
  return { kind: 'const', c: { dims, data: out, kind } };
}

function axesOf(ctx: NodeContext, rank: number): number[] {
  const fromInput = ctx.inputs[1];
  const raw = fromInput?.kind === 'const' ? Array.from(fromInput.c.data) : (ctx.attrs.get('axes') as number[] | undefined) ?? [];
  return raw.map((a) => (a < 0 ? a + rank : a));
}

function sameIr(ctx: NodeContext, x: Ir, op: string, attrs: Record<string, unknown> = {}): Value {
  const id = ctx.builder.add(plainNodeId(ctx), op, [x.id], attrs);
  return { ...x, id, single: ctx.uses[0] === 1 };
}

function elementwise(op: string): Handler {
  return (ctx) => sameIr(ctx, irInput(ctx, 0), op);
}

function passThrough(ctx: NodeContext): Value {
  const v = ctx.inputs[0];
  if (!v) unsupported('input 0 is missing');
  return v.kind === 'ir' ? { ...v, single: v.single && ctx.uses[0] === 1 } : v;
}

function binary(f: (x: number, y: number) => number, intDivide = false): Handler {
  return (ctx) => {
    const c = allConst(ctx);
    if (c) return foldBinary(c[0], c[1], f, intDivide);
    unsupported('arithmetic on computed tensors (only on constants, or as a bias Add)');
  };
}

export const handlers: Record<string, Handler> = {
  Constant(ctx) {
    const value = ctx.attrs.get('value') ?? ctx.attrs.get('value_float') ?? ctx.attrs.get('value_int') ?? ctx.attrs.get('value_floats') ?? ctx.attrs.get('value_ints');
    if (value === undefined) unsupported('a Constant without a numeric value');
    if (typeof value === 'number') return constant([], [value], ctx.attrs.has('value_int') ? 'int' : 'float');
    if (Array.isArray(value)) return constant([value.length], value, ctx.attrs.has('value_ints') ? 'int' : 'float');
    if (typeof value === 'object' && 'dims' in value) return { kind: 'const', c: value };
    unsupported('a Constant of a kind the import does not read');
  },
  Identity: passThrough,
  Dropout: (ctx) => {
    if (ctx.outputsUsedBeyondFirst) unsupported('Dropout whose mask output is read');
    return passThrough(ctx);
  },
  Cast(ctx) {
    const c = allConst(ctx);
    if (!c) unsupported('Cast of a computed tensor');
    const to = Number(ctx.attrs.get('to'));
    const float = to === 1 || to === 11 || to === 10;
    return constant(c[0].dims, float ? c[0].data : Array.from(c[0].data, Math.trunc), float ? 'float' : 'int');
  },
  Shape(ctx) {
    const v = ctx.inputs[0];
    if (!v) unsupported('input 0 is missing');
    const dims = v.kind === 'const' ? v.c.dims : v.dims;
    if (dims.some((d) => d === null)) unsupported('Shape of a tensor with a dynamic dimension (the batch): only static shape arithmetic is folded');
    return constant([dims.length], dims as number[], 'int');
  },
  Gather(ctx) {
    const c = allConst(ctx);
    const axis = Number(ctx.attrs.get('axis') ?? 0);
    if (c) {
      const [data, idx] = c;
      if (data.dims.length !== 1 || axis !== 0) unsupported('Gather on constants of rank above 1');
      return constant(idx.dims, Array.from(idx.data, (i) => data.data[i < 0 ? i + data.dims[0] : i]), data.kind);
    }
    const table = constInput(ctx, 0, 'the embedding table');
    const ids = irInput(ctx, 1);
    if (table.dims.length !== 2 || axis !== 0 || ids.dtype !== 'int32') unsupported('a Gather that is not an embedding lookup of integer ids');
    const [vocabSize, dim] = table.dims;
    const id = ctx.builder.add(plainNodeId(ctx), 'embedding', [ids.id], { vocabSize, dim }, { table: { data: Float32Array.from(table.data), shape: [vocabSize, dim] } });
    return { kind: 'ir', id, layout: { kind: 'plain' }, dims: [...ids.dims, dim], dtype: 'float32', single: ctx.uses[0] === 1 };
  },
  Unsqueeze(ctx) {
    const c = ctx.inputs[0];
    if (!c || c.kind !== 'const') unsupported('Unsqueeze of a computed tensor');
    const rank = c.c.dims.length + axesOf(ctx, c.c.dims.length + 1).length;
    const axes = axesOf(ctx, rank);
    const dims = [...c.c.dims];
    for (const a of [...axes].sort((x, y) => x - y)) dims.splice(a, 0, 1);
    return constant(dims, c.c.data, c.c.kind);
  },
  Squeeze(ctx) {
    const c = ctx.inputs[0];
    if (!c || c.kind !== 'const') unsupported('Squeeze of a computed tensor');
    const axes = axesOf(ctx, c.c.dims.length);
    return constant(c.c.dims.filter((d, i) => (axes.length > 0 ? !axes.includes(i) : d !== 1)), c.c.data, c.c.kind);
  },
  Concat(ctx) {
    const axis = Number(ctx.attrs.get('axis'));
    const c = allConst(ctx);
    if (c) {
      if (c.some((t) => t.dims.length !== 1)) unsupported('Concat of constants of rank above 1');
      return constant([c.reduce((n, t) => n + t.dims[0], 0)], c.flatMap((t) => Array.from(t.data)), c[0].kind);
    }
    const xs = ctx.inputs.map((_, i) => irInput(ctx, i));
    const rank = xs[0].dims.length;
    const a = axis < 0 ? axis + rank : axis;
    const channelAxis = xs[0].layout.kind === 'nchw' ? 1 : rank - 1;
    if (a !== channelAxis || xs.some((x) => x.layout.kind !== xs[0].layout.kind || x.layout.kind === 'flat')) unsupported(`Concat on axis ${axis} (only the channel or feature axis)`);
    const id = ctx.builder.add(plainNodeId(ctx), 'concat', xs.map((x) => x.id), { axis: -1 });
    const dims = [...xs[0].dims];
    dims[a] = xs.reduce((n, x) => n + (x.dims[a] as number), 0);
    return { ...xs[0], id, dims, single: ctx.uses[0] === 1 };
  },
  Add(ctx) {
    const c = allConst(ctx);
    if (c) return foldBinary(c[0], c[1], (x, y) => x + y);
    const [a, b] = ctx.inputs;
    if (a?.kind === 'ir' && b?.kind === 'ir') {
      if (a.layout.kind !== b.layout.kind || a.dims.join() !== b.dims.join()) unsupported(`Add of tensors of dims [${a.dims}] and [${b.dims}] (broadcasting is not imported)`);
      const id = ctx.builder.add(plainNodeId(ctx), 'add', [a.id, b.id], {});
      return { ...a, id, single: ctx.uses[0] === 1 };
    }
    const x = a?.kind === 'ir' ? a : irInput(ctx, 1);
    return biasAdd(ctx, x, constInput(ctx, a?.kind === 'ir' ? 1 : 0, 'the bias'));
  },
  Sub: binary((x, y) => x - y),
  Mul: binary((x, y) => x * y),
  Div: binary((x, y) => x / y, true),
  Relu: elementwise('relu'),
  Sigmoid: elementwise('sigmoid'),
  Tanh: elementwise('tanh'),
  Softmax(ctx) {
    const x = irInput(ctx, 0);
    const rank = x.dims.length;
    const axis = Number(ctx.attrs.get('axis') ?? (ctx.opset >= 13 ? -1 : 1));
    if (x.layout.kind !== 'plain' || (axis !== -1 && axis !== rank - 1)) unsupported(`Softmax on axis ${axis} of a rank-${rank} tensor (only the last axis)`);
    return sameIr(ctx, x, 'softmax', { axis: -1 });
  },
  Clip(ctx) {
    const x = irInput(ctx, 0);
    const bound = (i: number, attr: string, fallback: number) => {
      const v = ctx.inputs[i];
      if (v) return constInput(ctx, i, attr).data[0];
      const a = ctx.attrs.get(attr);
      return typeof a === 'number' ? a : fallback;
    };
    const min = bound(1, 'min', -Infinity);
    const max = bound(2, 'max', Infinity);
    if (min === 0 && max === Infinity) return sameIr(ctx, x, 'relu');
    if (!Number.isFinite(min) || !Number.isFinite(max)) unsupported('Clip with only one finite bound other than ReLU');
    return sameIr(ctx, x, 'onnx.clip', { min, max });
  },
  LayerNormalization(ctx) {
    const x = irInput(ctx, 0);
    const axis = Number(ctx.attrs.get('axis') ?? -1);
    if (x.layout.kind !== 'plain' || (axis !== -1 && axis !== x.dims.length - 1)) unsupported(`LayerNormalization over axis ${axis} (only the last)`);
    const gamma = constInput(ctx, 1, 'the scale');
    const n = gamma.data.length;
    const beta = ctx.inputs[2] ? constInput(ctx, 2, 'the bias').data : new Float64Array(n);
    const id = ctx.builder.add(plainNodeId(ctx), 'layerNorm', [x.id], { epsilon: Number(ctx.attrs.get('epsilon') ?? 1e-5) }, {
      gamma: { data: Float32Array.from(gamma.data), shape: [n] },
      beta: { data: Float32Array.from(beta), shape: [n] },
    });
    return { ...x, id, single: ctx.uses[0] === 1 };
  },
  ReduceMean(ctx) {
    const x = irInput(ctx, 0);
    const rank = x.dims.length;
    const axes = axesOf(ctx, rank);
    if (x.layout.kind !== 'plain' || Number(ctx.attrs.get('keepdims') ?? 1) !== 0 || axes.length === 0 || axes.some((a) => a === 0 || a === rank - 1)) {
      unsupported(`ReduceMean over axes [${axes}] (only inner axes of a [batch, ..., features] tensor, keepdims = 0)`);
    }
    const id = ctx.builder.add(plainNodeId(ctx), 'onnx.reduceMean', [x.id], { axes });
    return { ...x, id, dims: x.dims.filter((_, i) => !axes.includes(i)), single: ctx.uses[0] === 1 };
  },
  Gemm: (ctx) => gemm(ctx),
  MatMul: (ctx) => matMul(ctx),
  Conv: (ctx) => conv(ctx),
  BatchNormalization: (ctx, options) => batchNormalization(ctx, options.fuseBatchNorm),
  MaxPool: (ctx) => {
    if (ctx.outputsUsedBeyondFirst) unsupported('MaxPool whose indices output is read');
    return pool(ctx, 'max');
  },
  AveragePool: (ctx) => pool(ctx, 'avg'),
  GlobalAveragePool: (ctx) => globalAveragePool(ctx),
  Flatten(ctx) {
    const x = irInput(ctx, 0);
    if (Number(ctx.attrs.get('axis') ?? 1) !== 1) unsupported('Flatten from an axis other than 1');
    return flattenValue(ctx, x);
  },
  Reshape(ctx) {
    const x = irInput(ctx, 0);
    const target = Array.from(constInput(ctx, 1, 'the target shape').data);
    const rest = x.dims.slice(1) as number[];
    const size = rest.reduce((a, b) => a * b, 1);
    if (target.length === 2 && (target[0] === 0 || target[0] === -1) && (target[1] === -1 || target[1] === size)) return flattenValue(ctx, x);
    if (x.layout.kind !== 'plain' || (target[0] !== 0 && target[0] !== -1)) unsupported(`Reshape of [${x.dims}] to [${target}] (only flattening, or reshaping features with the batch kept)`);
    const shape = target.slice(1).map((d, i) => (d === 0 ? rest[i] : d));
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const dims = [x.dims[0], ...shape.map((d) => (d === -1 ? size / known : d))];
    const id = ctx.builder.add(plainNodeId(ctx), 'reshape', [x.id], { shape });
    return { ...x, id, dims, single: ctx.uses[0] === 1 };
  },
};
