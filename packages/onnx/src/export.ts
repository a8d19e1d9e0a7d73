import { RsError, ancestors, tf, type Model, type NodeDef, type OpRegistry, type Tensor, type TensorInfo } from '@rs/core';
import { onnx, dataTypeOf, tensorProto, toAttribute, type AttrValue, type NodeProto, type OnnxDType, type TensorProto, type ValueInfoProto } from './proto';
import type { OnnxCheckInfo, OnnxEmitContext, OnnxRule, OnnxRuleRegistry } from './rule';
import { defaultOnnxRules } from './builtin-rules';

/**
 * Options of {@link toOnnx} and {@link onnxSupport}.
 *
 * @example
 * toOnnx(model, { opset: 18, batch: 1, outputs: ['exit:pool1'], name: 'branch-only' });
 */
export interface OnnxExportOptions {
  /** ONNX opset of the default domain, 17 to 21. Default 17. */
  opset?: number;
  /** Batch dimension of inputs and outputs: `'dynamic'` (a named dimension `batch`) or a fixed size. Default `'dynamic'`. */
  batch?: 'dynamic' | number;
  /** Node ids to export as graph outputs (only what they need is exported). Default: the model's outputs. */
  outputs?: string[];
  /** Graph name. Default `'rs-model'`. */
  name?: string;
  /** Rule table for ops no package provides a lowering for (core's ops). Default: the shared table that {@link registerOnnxRule} extends. */
  rules?: OnnxRuleRegistry;
  /**
   * Where technique ops' lowerings are found (extension point `'onnx'`, provided by each package's
   * `register(registry)`); they are looked up before the rule table. Default: the model's registry.
   */
  registry?: OpRegistry;
}

/**
 * One node that cannot be exported, and why.
 *
 * @example
 * { node: 'glu', op: 'gatedLinear', reason: "no ONNX rule for op 'gatedLinear' (register one with registerOnnxRule)" }
 */
export interface OnnxProblem {
  node: string;
  op: string;
  reason: string;
}

/**
 * The answer of {@link onnxSupport}.
 *
 * @example
 * const { supported, problems } = onnxSupport(model); // supported: problems.length === 0
 */
export interface OnnxSupport {
  supported: boolean;
  problems: OnnxProblem[];
}

export const MIN_OPSET = 17;
export const MAX_OPSET = 21;
const PRODUCER_VERSION = '0.1.0';

/** ONNX IR version that goes with an opset (onnx/docs/Versioning.md). */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

interface Resolved {
  opset: number;
  batch: 'dynamic' | number;
  outputs: string[];
  name: string;
  rules: OnnxRuleRegistry;
  /** The lowering of an op kind: provided through the registry first, else the rule table's. */
  ruleFor(op: string): OnnxRule | undefined;
  /** Nodes the outputs need, in topological order. */
  nodes: NodeDef[];
}

function resolve(model: Model, options: OnnxExportOptions): Resolved {
  const opset = options.opset ?? 17;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new RsError('INVALID_ARGUMENT', `opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET}, got ${String(options.opset)}.`, { opset: options.opset });
  }
  const batch = options.batch ?? 'dynamic';
  if (batch !== 'dynamic' && !(Number.isInteger(batch) && batch >= 1)) {
    throw new RsError('INVALID_ARGUMENT', `batch must be 'dynamic' or a positive integer, got ${JSON.stringify(options.batch)}.`, { batch: options.batch });
  }
  const graph = model.graph;
  const outputs = options.outputs ?? graph.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) throw new RsError('INVALID_ARGUMENT', 'outputs must be a non-empty array of node ids.');
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const inputIds = new Set(graph.inputs.map((i) => i.id));
  for (const id of outputs) {
    if (inputIds.has(id)) throw new RsError('INVALID_ARGUMENT', `Cannot export output '${id}': it is a graph input; outputs must be nodes.`, { node: id });
    if (!byId.has(id)) {
      throw new RsError('UNKNOWN_NODE', `Cannot export output '${id}': no such node. Nodes: ${graph.nodes.map((n) => n.id).join(', ')}.`, { node: id });
    }
  }
  if (new Set(outputs).size !== outputs.length) throw new RsError('INVALID_ARGUMENT', `outputs name a node twice: ${outputs.join(', ')}.`);
  const needed = ancestors(graph, outputs);
  const nodes = model.validated.order.filter((n) => needed.has(n.id));
  const rules = options.rules ?? defaultOnnxRules;
  const registry = options.registry ?? model.registry;
  if (!registry || typeof registry.extension !== 'function') throw new RsError('INVALID_ARGUMENT', 'options.registry must be an OpRegistry of @rs/core.');
  const ruleFor = (op: string): OnnxRule | undefined => registry.extension('onnx', op) ?? rules.get(op);
  return { opset, batch, outputs, name: options.name ?? 'rs-model', rules, ruleFor, nodes };
}

/** Reads parameter values as a forward pass sees them (`model.forwardParams()`: masks applied). */
function paramReader(model: Model): (key: string) => Float32Array | Int32Array {
  const cache = new Map<string, Float32Array | Int32Array>();
  return (key) => {
    let values = cache.get(key);
    if (!values) {
      const entry = model.param(key);
      // dataSync outside tf.tidy: a TypedArray must never be a tidy's return value.
      const masked = tf.tidy(() => tf.clone(model.forwardParams({ keys: [key] }).get(key) as Tensor));
      const data = masked.dataSync();
      values = entry.value.dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data);
      masked.dispose();
      cache.set(key, values);
    }
    return values;
  };
}

function nodeParams(model: Model, node: NodeDef): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const spec of model.validated.paramSpecs.values()) {
    if (spec.node === node.id) shapes[spec.name] = [...model.param(`${node.id}/${spec.name}`).value.shape];
  }
  return shapes;
}

function checkInfo(model: Model, node: NodeDef, resolved: Resolved, read: (key: string) => Float32Array | Int32Array): OnnxCheckInfo {
  const infos = model.validated.infos;
  const params = nodeParams(model, node);
  return {
    node,
    inputs: node.inputs.map((i) => infos.get(i) as TensorInfo),
    output: infos.get(node.id) as TensorInfo,
    params,
    paramValues(name) {
      if (!(name in params)) throw new RsError('UNKNOWN_PARAM', `Node '${node.id}' (${node.op}) has no parameter '${name}'. It has: ${Object.keys(params).join(', ') || 'none'}.`, { node: node.id, param: name });
      return read(`${node.id}/${name}`);
    },
    opset: resolved.opset,
    batch: resolved.batch,
  };
}

function problemsOf(model: Model, resolved: Resolved, read: (key: string) => Float32Array | Int32Array): OnnxProblem[] {
  const problems: OnnxProblem[] = [];
  for (const node of resolved.nodes) {
    const rule = resolved.ruleFor(node.op);
    if (!rule) {
      problems.push({ node: node.id, op: node.op, reason: `no ONNX rule for op '${node.op}' (register one with registerOnnxRule)` });
      continue;
    }
    const reason = rule.check?.(checkInfo(model, node, resolved, read));
    if (reason !== undefined) problems.push({ node: node.id, op: node.op, reason });
  }
  return problems;
}

function unsupported(problems: OnnxProblem[]): RsError {
  const list = problems.map((p) => `node '${p.node}' (${p.op}): ${p.reason}`).join('; ');
  const first = problems[0];
  return new RsError('UNSUPPORTED_EXPORT', `Cannot export this model to ONNX: ${list}.`, { node: first.node, op: first.op, reason: first.reason, problems });
}

/**
 * Whether `model` can be exported to ONNX exactly, and if not, which nodes stop it and why. Only
 * the nodes the exported outputs need are checked.
 *
 * @example
 * const { supported, problems } = onnxSupport(model);
 * if (!supported) for (const p of problems) console.log(`${p.node} (${p.op}): ${p.reason}`);
 */
export function onnxSupport(model: Model, options: OnnxExportOptions = {}): OnnxSupport {
  const resolved = resolve(model, options);
  const problems = problemsOf(model, resolved, paramReader(model));
  return { supported: problems.length === 0, problems };
}

/** Collects ONNX nodes and initializers; names every value uniquely. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly nchwOf = new Map<string, string>();
  private readonly paramNames = new Map<string, string>();

  constructor(
    readonly opset: number,
    reserved: Iterable<string>,
  ) {
    for (const name of reserved) this.used.add(name);
  }

  fresh(base: string): string {
    let name = base;
    for (let n = 1; this.used.has(name); n++) name = `${base}_${n}`;
    this.used.add(name);
    return name;
  }

  initializer(base: string, values: ArrayLike<number> | ArrayLike<bigint>, shape: readonly number[], dtype: OnnxDType): string {
    const name = this.fresh(base);
    this.initializers.push(tensorProto(name, values, shape, dtype));
    return name;
  }

  param(key: string, values: Float32Array | Int32Array, shape: readonly number[]): string {
    let name = this.paramNames.get(key);
    if (!name) {
      name = this.initializer(key, values, shape, values instanceof Int32Array ? 'int32' : 'float32');
      this.paramNames.set(key, name);
    }
    return name;
  }

  node(scope: string, opType: string, inputs: readonly string[], attrs: Record<string, AttrValue | undefined>, outputs: number, domain?: string): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(`${scope}::${opType}`));
    const attribute = Object.entries(attrs)
      .filter((entry): entry is [string, AttrValue] => entry[1] !== undefined)
      .map(([k, v]) => toAttribute(k, v));
    this.nodes.push({ name: names[0], opType, input: [...inputs], output: names, attribute, ...(domain ? { domain } : {}) });
    return names;
  }

  toNchw(scope: string, nhwc: string): string {
    let nchw = this.nchwOf.get(nhwc);
    if (!nchw) {
      nchw = this.node(scope, 'Transpose', [nhwc], { perm: [0, 3, 1, 2] }, 1)[0];
      this.nchwOf.set(nhwc, nchw);
    }
    return nchw;
  }

  fromNchw(scope: string, nchw: string): string {
    const nhwc = this.node(scope, 'Transpose', [nchw], { perm: [0, 2, 3, 1] }, 1)[0];
    this.nchwOf.set(nhwc, nchw);
    return nhwc;
  }

  /** Drops nodes and initializers no output depends on (e.g. an NHWC Transpose only NCHW consumers would have read). */
  prune(outputs: readonly string[]): void {
    const live = new Set(outputs);
    const kept: NodeProto[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (!(node.output ?? []).some((o) => live.has(o))) continue;
      kept.push(node);
      for (const input of node.input ?? []) live.add(input);
    }
    this.nodes.splice(0, this.nodes.length, ...kept.reverse());
    const initializers = this.initializers.filter((t) => live.has(t.name as string));
    this.initializers.splice(0, this.initializers.length, ...initializers);
  }
}

function emitContext(builder: GraphBuilder, info: OnnxCheckInfo, inputNames: string[]): OnnxEmitContext {
  const scope = info.node.id;
  const ctx: OnnxEmitContext = {
    ...info,
    inputNames,
    param: (name) => builder.param(`${scope}/${name}`, info.paramValues(name), info.params[name]),
    constant: (values, shape, dtype = 'float32') => builder.initializer(`${scope}::const`, values, shape, dtype),
    int64s: (values) => builder.initializer(`${scope}::const`, values, [values.length], 'int64'),
    scalar: (value, dtype = 'float32') => builder.initializer(`${scope}::const`, [value], [], dtype),
    op: (opType, inputs, attrs = {}) => builder.node(scope, opType, inputs, attrs, 1)[0],
    ops: (opType, inputs, attrs, options) => builder.node(scope, opType, inputs, attrs, options.outputs, options.domain),
    toNchw: (nhwc) => builder.toNchw(scope, nhwc),
    fromNchw: (nchw) => builder.fromNchw(scope, nchw),
    reduce(opType, input, axes, keepdims) {
      const keep = keepdims ? 1 : 0;
      const modern = builder.opset >= 18 || opType === 'ReduceSum';
      if (modern) return ctx.op(opType, [input, ctx.int64s(axes)], { keepdims: keep });
      return ctx.op(opType, [input], { axes: [...axes], keepdims: keep });
    },
    fail(reason): never {
      throw unsupported([{ node: info.node.id, op: info.node.op, reason }]);
    },
  };
  return ctx;
}

function valueInfo(name: string, info: TensorInfo, batch: 'dynamic' | number): ValueInfoProto {
  const dim = info.shape.map((d, axis) => {
    if (d !== null) return { dimValue: d };
    if (axis === 0) return batch === 'dynamic' ? { dimParam: 'batch' } : { dimValue: batch };
    return { dimParam: `${name}_dim${axis}` };
  });
  return { name, type: { tensorType: { elemType: dataTypeOf(info.dtype), shape: { dim } } } };
}

/**
 * Exports `model` as a serialized ONNX ModelProto (opset 17 by default). Parameters become
 * initializers with their masks applied (pruned weights are zeros). Inputs and outputs keep the
 * model's names, dtypes and layout (images stay NHWC: feed the tensors you feed the model).
 * Every node is checked first: an op without a rule, or a dynamic part with no exact static
 * form, raises `UNSUPPORTED_EXPORT` naming the node, its op and why, before anything is built.
 * Browser-safe (no file system): write the bytes wherever you like.
 *
 * @example
 * import { InferenceSession, Tensor } from 'onnxruntime-node';
 * const bytes = toOnnx(model);
 * const session = await InferenceSession.create(bytes);
 * const { fc3 } = await session.run({ x: new Tensor('float32', pixels, [1, 784]) });
 */
export function toOnnx(model: Model, options: OnnxExportOptions = {}): Uint8Array {
  const resolved = resolve(model, options);
  const read = paramReader(model);
  const problems = problemsOf(model, resolved, read);
  if (problems.length > 0) throw unsupported(problems);

  const graph = model.graph;
  const infos = model.validated.infos;
  const builder = new GraphBuilder(resolved.opset, [...graph.inputs.map((i) => i.id), ...resolved.outputs]);
  const valueOf = new Map<string, string>(graph.inputs.map((i) => [i.id, i.id]));
  for (const node of resolved.nodes) {
    const rule = resolved.ruleFor(node.op) as OnnxRule;
    const info = checkInfo(model, node, resolved, read);
    const inputNames = node.inputs.map((i) => valueOf.get(i) as string);
    valueOf.set(node.id, rule.emit(emitContext(builder, info, inputNames)));
  }
  // Graph outputs carry the node ids as names.
  for (const id of resolved.outputs) {
    builder.nodes.push({ name: builder.fresh(`${id}::output`), opType: 'Identity', input: [valueOf.get(id) as string], output: [id] });
  }
  builder.prune(resolved.outputs);

  const proto = onnx.ModelProto.create({
    irVersion: irVersionFor(resolved.opset),
    opsetImport: [{ domain: '', version: resolved.opset }],
    producerName: '@rs/onnx',
    producerVersion: PRODUCER_VERSION,
    graph: {
      name: resolved.name,
      node: builder.nodes,
      initializer: builder.initializers,
      input: graph.inputs.map((i) => valueInfo(i.id, { shape: i.shape, dtype: i.dtype }, resolved.batch)),
      output: resolved.outputs.map((id) => valueInfo(id, infos.get(id) as TensorInfo, resolved.batch)),
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
