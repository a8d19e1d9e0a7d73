import type { NodeProto } from '../proto';
import { unsupported, type NodeContext, type Value } from './builder';
import type { Constant } from './decode';

// PyTorch's exporter writes `nn.MultiheadAttention` (and so `nn.TransformerEncoderLayer`) as
// about 60 nodes under the module's name scope (`/encoder/layers.0/self_attn/...`): a transpose
// to sequence-first, one packed q/k/v MatMul + Add, three Slices, head reshapes, the scaled
// scores, Softmax, the weighted sum and the output projection (Gemm). The import recognises such
// a scope as a whole and reads it as one core `multiHeadAttention` node.

/** One attention scope: the nodes it holds and the values that enter and leave it. */
export interface AttentionRegion {
  scope: string;
  /** Indices (in the graph's node list) of the scope's nodes, Constants excepted. */
  members: Set<number>;
  /** The index of the last member: the region is converted there. */
  last: number;
  input: string;
  output: string;
  problem?: string;
  /** What the region stands for, in errors (default: PyTorch's MultiheadAttention). */
  opType?: string;
  /** Reads a region other than attention (see patterns.ts) from its input value. */
  convert?: (ctx: NodeContext, x: Value | undefined) => Value;
}

const ALLOWED = new Set(['Transpose', 'Shape', 'Gather', 'Div', 'Cast', 'MatMul', 'Add', 'Slice', 'Mul', 'Unsqueeze', 'Concat', 'Reshape', 'Softmax', 'Gemm']);

/** Finds the scopes that hold a Softmax and whose name ends in `self_attn/` (or `attn/`, `attention/`). */
export function findAttentionRegions(nodes: NodeProto[], isConstant: (name: string) => boolean, graphOutputs: ReadonlySet<string>): AttentionRegion[] {
  const scopes = new Set<string>();
  for (const node of nodes) {
    const name = node.name ?? '';
    const cut = name.lastIndexOf('/');
    if (node.opType === 'Softmax' && cut > 0 && /(attn|attention)\/$/i.test(name.slice(0, cut + 1))) scopes.add(name.slice(0, cut + 1));
  }
  const regions: AttentionRegion[] = [];
  for (const scope of scopes) {
    const members = new Set<number>();
    nodes.forEach((n, i) => {
      if ((n.name ?? '').startsWith(scope) && n.opType !== 'Constant') members.add(i);
    });
    const produced = new Set<string>();
    for (const i of members) for (const o of nodes[i].output ?? []) produced.add(o);
    const entering = new Set<string>();
    for (const i of members) for (const v of nodes[i].input ?? []) if (v && !produced.has(v) && !isConstant(v)) entering.add(v);
    const leaving = new Set<string>();
    nodes.forEach((n, i) => {
      if (!members.has(i)) for (const v of n.input ?? []) if (produced.has(v)) leaving.add(v);
    });
    for (const v of produced) if (graphOutputs.has(v)) leaving.add(v);
    const last = Math.max(...members);
    const region: AttentionRegion = { scope, members, last, input: [...entering][0] ?? '', output: [...leaving][0] ?? '' };
    const others = [...members].map((i) => nodes[i].opType ?? '').filter((op) => !ALLOWED.has(op));
    if (entering.size !== 1 || leaving.size !== 1) region.problem = `the attention scope reads ${entering.size} and exposes ${leaving.size} computed values (one input, one output expected: self-attention without a mask)`;
    else if (others.length > 0) region.problem = `the attention scope holds ops outside PyTorch's plain self-attention (${[...new Set(others)].join(', ')}: an attention mask or dropout?)`;
    regions.push(region);
  }
  return regions;
}

/** Reads the recognised region as one `multiHeadAttention` node. */
export function attentionNode(ctx: NodeContext, region: AttentionRegion, nodes: NodeProto[], constantOf: (name: string) => Constant | undefined, x: Value | undefined): Value {
  if (!x || x.kind !== 'ir' || x.dims.length !== 3 || x.layout.kind !== 'plain') unsupported('attention over a value that is not a [batch, sequence, features] tensor');
  const d = x.dims[2] as number;
  const member = [...region.members].sort((a, b) => a - b).map((i) => nodes[i]);
  const first = member.find((n) => (n.input ?? []).includes(region.input));
  const perm = (first?.attribute ?? []).find((a) => a.name === 'perm')?.ints?.map(Number);
  if (first?.opType !== 'Transpose' || perm?.join() !== '1,0,2') unsupported('attention that does not start by transposing a batch-first input (export with batch_first=True)');
  const weighted = member.filter((n) => n.opType === 'MatMul' && constantOf(n.input?.[1] ?? '') !== undefined);
  if (weighted.length !== 1) unsupported(`attention with ${weighted.length} projection MatMuls (only the packed q/k/v projection of embed_dim = kdim = vdim is read)`);
  const w = constantOf(weighted[0].input![1])!;
  if (w.dims.join() !== `${d},${3 * d}`) unsupported(`a packed projection of dims [${w.dims}] for width ${d}`);
  const biasAdd = member.find((n) => n.opType === 'Add' && (n.input ?? []).includes(weighted[0].output![0]));
  const biasName = biasAdd?.input?.find((v) => v !== weighted[0].output![0]);
  const b = biasName ? constantOf(biasName) : undefined;
  const gemm = member.filter((n) => n.opType === 'Gemm');
  const wo = gemm.length === 1 ? constantOf(gemm[0].input?.[1] ?? '') : undefined;
  const bo = gemm.length === 1 ? constantOf(gemm[0].input?.[2] ?? '') : undefined;
  const transB = (gemm[0]?.attribute ?? []).find((a) => a.name === 'transB')?.i;
  if (!wo || wo.dims.join() !== `${d},${d}` || Number(transB ?? 0) !== 1) unsupported('attention without a [D, D] output projection Gemm (transB = 1)');
  // The scores are q / sqrt(headDim): the one scalar Div by a constant in the scope.
  const scales = member.filter((n) => n.opType === 'Div' && constantOf(n.input?.[1] ?? '')?.data.length === 1 && constantOf(n.input?.[1] ?? '')?.kind === 'float');
  if (scales.length !== 1) unsupported('attention whose score scale (q / sqrt(headDim)) was not found');
  const scale = constantOf(scales[0].input![1])!.data[0];
  const headDim = Math.round(scale * scale);
  if (Math.abs(Math.sqrt(headDim) - scale) > 1e-4 * scale || d % headDim !== 0) unsupported(`a score scale of ${scale}, not 1/sqrt(headDim) for a head size dividing ${d}`);
  const column = (offset: number) => {
    const out = new Float32Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[i * d + j] = w.data[i * 3 * d + offset + j];
    return { data: out, shape: [d, d] };
  };
  const woT = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) woT[i * d + j] = wo.data[j * d + i];
  const params: Record<string, { data: Float32Array; shape: number[] }> = { wq: column(0), wk: column(d), wv: column(2 * d), wo: { data: woT, shape: [d, d] } };
  const useBias = b !== undefined || bo !== undefined;
  if (useBias) {
    const part = (k: number) => ({ data: Float32Array.from({ length: d }, (_, j) => b?.data[k * d + j] ?? 0), shape: [d] });
    Object.assign(params, { bq: part(0), bk: part(1), bv: part(2), bo: { data: Float32Array.from(bo?.data ?? new Float32Array(d)), shape: [d] } });
  }
  const id = ctx.builder.add(ctx.builder.isGraphOutput(region.output) ? ctx.builder.id(region.output) : ctx.builder.id(region.scope.replace(/\/$/, '')), 'multiHeadAttention', [x.id], { numHeads: d / headDim, headDim, useBias }, params);
  return { ...x, id, single: ctx.uses[0] === 1 };
}
