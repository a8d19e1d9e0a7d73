import type { NodeProto } from '../proto';
import { unsupported, type Value } from './builder';
import type { AttentionRegion } from './attention';
import { readAttrs, type Constant } from './decode';
import { plainNodeId } from './layers';

// Decomposed forms PyTorch's exporter writes below opset 17 or for exact GELU, read as one node:
//   GELU (erf):  Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5          => onnx.geluErf
//   LayerNorm:   ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div
//                [-> Mul gamma -> Add beta]                                   => layerNorm

interface Index {
  nodes: NodeProto[];
  producer: Map<string, number>;
  consumers: Map<string, number[]>;
  constant(name: string): Constant | undefined;
}

function indexOf(nodes: NodeProto[], values: ReadonlyMap<string, Value>): Index {
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  const constants = new Map<string, Constant>();
  for (const [name, v] of values) if (v.kind === 'const') constants.set(name, v.c);
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) producer.set(o, i);
    for (const v of n.input ?? []) if (v) consumers.set(v, [...(consumers.get(v) ?? []), i]);
    if (n.opType === 'Constant') {
      const value = readAttrs(n, 'importOnnx').get('value');
      if (value && typeof value === 'object' && 'dims' in value) constants.set(n.output?.[0] ?? '', value as Constant);
    } else if (n.opType === 'Identity' && constants.has(n.input?.[0] ?? '')) constants.set(n.output?.[0] ?? '', constants.get(n.input![0])!);
  });
  return { nodes, producer, consumers, constant: (name) => constants.get(name) };
}

/** The only node reading `value` when it has op `op` (graph outputs count as readers). */
function soleConsumer(ix: Index, value: string, op: string, outputs: ReadonlySet<string>): number | undefined {
  const readers = ix.consumers.get(value) ?? [];
  return readers.length === 1 && !outputs.has(value) && ix.nodes[readers[0]].opType === op ? readers[0] : undefined;
}

function scalar(ix: Index, name: string | undefined): number | undefined {
  const c = name ? ix.constant(name) : undefined;
  return c && c.data.length === 1 ? c.data[0] : undefined;
}

/** The operand of a binary node that is not `value`. */
function other(node: NodeProto, value: string): string | undefined {
  const [a, b] = node.input ?? [];
  return a === value ? b : b === value ? a : undefined;
}

function region(ix: Index, members: number[], input: string, output: string, opType: string, convert: AttentionRegion['convert']): AttentionRegion {
  const last = Math.max(...members);
  return { scope: ix.nodes[last].name || output, members: new Set(members), last, input, output, opType, convert };
}

function gelu(ix: Index, erf: number, outputs: ReadonlySet<string>): AttentionRegion | undefined {
  const div = ix.producer.get(ix.nodes[erf].input?.[0] ?? '');
  if (div === undefined || ix.nodes[div].opType !== 'Div' || Math.abs((scalar(ix, ix.nodes[div].input?.[1]) ?? 0) - Math.SQRT2) > 1e-5) return undefined;
  const x = ix.nodes[div].input![0];
  const add = soleConsumer(ix, ix.nodes[erf].output![0], 'Add', outputs);
  if (add === undefined || scalar(ix, other(ix.nodes[add], ix.nodes[erf].output![0])) !== 1) return undefined;
  const mul = soleConsumer(ix, ix.nodes[add].output![0], 'Mul', outputs);
  if (mul === undefined || other(ix.nodes[mul], ix.nodes[add].output![0]) !== x) return undefined;
  const half = soleConsumer(ix, ix.nodes[mul].output![0], 'Mul', outputs);
  if (half === undefined || scalar(ix, other(ix.nodes[half], ix.nodes[mul].output![0])) !== 0.5) return undefined;
  if ((ix.consumers.get(ix.nodes[div].output![0]) ?? []).length !== 1) return undefined;
  return region(ix, [div, erf, add, mul, half], x, ix.nodes[half].output![0], 'GELU (erf form)', (ctx, value) => {
    if (!value || value.kind !== 'ir') unsupported('GELU of a constant');
    const id = ctx.builder.add(plainNodeId(ctx), 'onnx.geluErf', [value.id], {});
    return { ...value, id, single: ctx.uses[0] === 1 };
  });
}

function lastAxisMean(ix: Index, i: number | undefined, rank?: number): boolean {
  if (i === undefined || ix.nodes[i].opType !== 'ReduceMean') return false;
  const attrs = readAttrs(ix.nodes[i], 'importOnnx');
  const axes = (attrs.get('axes') as number[] | undefined) ?? Array.from(ix.constant(ix.nodes[i].input?.[1] ?? '')?.data ?? []);
  return axes.length === 1 && (axes[0] === -1 || (rank !== undefined && axes[0] === rank - 1)) && attrs.get('keepdims') !== 0;
}

function layerNorm(ix: Index, sqrt: number, outputs: ReadonlySet<string>): AttentionRegion | undefined {
  const at = (value: string | undefined) => (value === undefined ? undefined : ix.producer.get(value));
  const addEps = at(ix.nodes[sqrt].input?.[0]);
  if (addEps === undefined || ix.nodes[addEps].opType !== 'Add') return undefined;
  const variance = at(ix.nodes[addEps].input?.find((v) => scalar(ix, v) === undefined));
  const epsilon = scalar(ix, ix.nodes[addEps].input?.find((v) => scalar(ix, v) !== undefined));
  if (variance === undefined || epsilon === undefined || !lastAxisMean(ix, variance)) return undefined;
  const pow = at(ix.nodes[variance].input?.[0]);
  if (pow === undefined || ix.nodes[pow].opType !== 'Pow' || scalar(ix, ix.nodes[pow].input?.[1]) !== 2) return undefined;
  const sub = at(ix.nodes[pow].input?.[0]);
  if (sub === undefined || ix.nodes[sub].opType !== 'Sub') return undefined;
  const [x, meanValue] = ix.nodes[sub].input ?? [];
  const mean = at(meanValue);
  if (!lastAxisMean(ix, mean) || ix.nodes[mean!].input?.[0] !== x) return undefined;
  const centered = ix.nodes[sub].output![0];
  const div = (ix.consumers.get(centered) ?? []).find((i) => ix.nodes[i].opType === 'Div' && ix.nodes[i].input?.[1] === ix.nodes[sqrt].output![0]);
  if (div === undefined || (ix.consumers.get(centered) ?? []).length !== 2) return undefined;
  const members = [mean!, sub, pow, variance, addEps, sqrt, div];
  let output = ix.nodes[div].output![0];
  let gamma: Constant | undefined;
  let beta: Constant | undefined;
  const mul = soleConsumer(ix, output, 'Mul', outputs);
  const g = mul === undefined ? undefined : ix.constant(other(ix.nodes[mul], output) ?? '');
  if (mul !== undefined && g) {
    gamma = g;
    members.push(mul);
    output = ix.nodes[mul].output![0];
    const add = soleConsumer(ix, output, 'Add', outputs);
    const b = add === undefined ? undefined : ix.constant(other(ix.nodes[add], output) ?? '');
    if (add !== undefined && b) {
      beta = b;
      members.push(add);
      output = ix.nodes[add].output![0];
    }
  }
  return region(ix, members, x, output, 'LayerNorm (decomposed)', (ctx, value) => {
    if (!value || value.kind !== 'ir' || value.layout.kind !== 'plain') unsupported('a decomposed LayerNorm over a tensor that is not [batch, ..., features]');
    const d = value.dims[value.dims.length - 1] as number;
    const vector = (c: Constant | undefined, fill: number) => {
      if (c && c.data.length !== d) unsupported(`a LayerNorm scale or shift of ${c.data.length} values for ${d} features`);
      return { data: c ? Float32Array.from(c.data) : new Float32Array(d).fill(fill), shape: [d] };
    };
    const id = ctx.builder.add(plainNodeId(ctx), 'layerNorm', [value.id], { epsilon }, { gamma: vector(gamma, 1), beta: vector(beta, 0) });
    return { ...value, id, single: ctx.uses[0] === 1 };
  });
}

/** Finds the decomposed GELU and LayerNorm forms (regions read as one node each). */
export function findPatternRegions(nodes: NodeProto[], values: ReadonlyMap<string, Value>, outputs: ReadonlySet<string>): AttentionRegion[] {
  const ix = indexOf(nodes, values);
  const found: AttentionRegion[] = [];
  nodes.forEach((n, i) => {
    const r = n.opType === 'Erf' ? gelu(ix, i, outputs) : n.opType === 'Sqrt' ? layerNorm(ix, i, outputs) : undefined;
    if (r) found.push(r);
  });
  return found;
}
