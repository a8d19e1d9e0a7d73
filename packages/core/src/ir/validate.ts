import { RsError, formatShape } from '../errors';
import type { OpRegistry } from '../ops/registry';
import type { InferContext, OpSchema } from '../ops/schema';
import type { GraphDef, NodeDef, ParamSpec, TensorInfo } from './types';
import { paramKey } from './types';

/** A validated graph: nodes in topological order, every tensor's shape, every parameter's spec. */
export interface ValidatedGraph {
  order: NodeDef[];
  infos: Map<string, TensorInfo>;
  /** Parameter specs by key `nodeId/name`. */
  paramSpecs: Map<string, ParamSpec & { node: string; name: string }>;
}

const ID_PATTERN = /^[A-Za-z0-9_.:\-/]+$/;

function inferContext(node: NodeDef, inputs: TensorInfo[]): InferContext {
  const where = `node '${node.id}' (${node.op}) with input shapes ${inputs.map((i) => formatShape(i.shape)).join(', ') || 'none'}`;
  return {
    nodeId: node.id,
    fail(message: string): never {
      throw new RsError('SHAPE_MISMATCH', `${where}: ${message}`, { node: node.id, op: node.op, inputShapes: inputs.map((i) => i.shape) });
    },
    failAttrs(message: string): never {
      throw new RsError('INVALID_ATTRS', `node '${node.id}' (${node.op}): ${message}`, { node: node.id, op: node.op, attrs: node.attrs });
    },
  };
}

function checkArity(schema: OpSchema<any>, node: NodeDef): void {
  const [min, max] = typeof schema.arity === 'number' ? [schema.arity, schema.arity] : schema.arity;
  const n = node.inputs.length;
  if (n < min || n > max) {
    const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new RsError('ARITY', `node '${node.id}' (${node.op}) takes ${expected} input(s), got ${n}.`, { node: node.id });
  }
}

/**
 * Checks structure (ids, references, cycles, ops, arity) and infers every shape. Errors name
 * the node and the shapes involved.
 */
export function validateGraph(graph: GraphDef, registry: OpRegistry): ValidatedGraph {
  if (!graph || !Array.isArray(graph.inputs) || !Array.isArray(graph.nodes) || !Array.isArray(graph.outputs)) {
    throw new RsError('INVALID_GRAPH', 'A graph needs `inputs`, `nodes` and `outputs` arrays.');
  }
  if (graph.outputs.length === 0) throw new RsError('INVALID_GRAPH', 'A graph needs at least one output.');
  if (graph.meta !== undefined && (typeof graph.meta !== 'object' || graph.meta === null || Array.isArray(graph.meta))) {
    throw new RsError('INVALID_GRAPH', `A graph's \`meta\` must be a JSON object of annotations; got ${JSON.stringify(graph.meta)}.`);
  }
  const seen = new Set<string>();
  const checkId = (id: unknown, what: string): void => {
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
      throw new RsError('INVALID_GRAPH', `${what} id ${JSON.stringify(id)} is not a valid id (letters, digits, _ . : - /).`);
    }
    if (seen.has(id)) throw new RsError('DUPLICATE_ID', `Id '${id}' is used twice; node and input ids must be unique.`, { id });
    seen.add(id);
  };
  // Entries that are not objects (`null`, a number, an array) would fail below with a raw TypeError.
  graph.inputs.forEach((input: unknown, i) => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new RsError('INVALID_GRAPH', `Graph input ${i} is ${JSON.stringify(input) ?? String(input)}; each input must be an object { id, shape, dtype }.`, { index: i });
    }
  });
  graph.nodes.forEach((node: unknown, i) => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      throw new RsError('INVALID_GRAPH', `Node ${i} is ${JSON.stringify(node) ?? String(node)}; each node must be an object { id, op, inputs, attrs }.`, { index: i });
    }
  });
  for (const input of graph.inputs) {
    checkId(input.id, 'Input');
    if (!Array.isArray(input.shape) || input.shape.some((d) => d !== null && !(Number.isInteger(d) && d > 0))) {
      throw new RsError('INVALID_GRAPH', `Input '${input.id}' has an invalid shape ${JSON.stringify(input.shape)}.`);
    }
    if (input.dtype !== 'float32' && input.dtype !== 'int32') {
      throw new RsError('INVALID_GRAPH', `Input '${input.id}' has dtype ${JSON.stringify(input.dtype)}; use float32 or int32.`);
    }
  }
  const byId = new Map<string, NodeDef>();
  for (const node of graph.nodes) {
    checkId(node.id, 'Node');
    if (!Array.isArray(node.inputs)) throw new RsError('INVALID_GRAPH', `Node '${node.id}' needs an \`inputs\` array.`);
    if (typeof node.attrs !== 'object' || node.attrs === null) throw new RsError('INVALID_GRAPH', `Node '${node.id}' needs an \`attrs\` object.`);
    byId.set(node.id, node);
  }
  for (const node of graph.nodes) {
    const schema = registry.get(node.op);
    checkArity(schema, node);
    for (const input of node.inputs) {
      if (!seen.has(input)) {
        throw new RsError('DANGLING_INPUT', `Node '${node.id}' reads '${input}', which is neither a graph input nor a node.`, { node: node.id, input });
      }
    }
  }
  for (const out of graph.outputs) {
    if (!seen.has(out)) throw new RsError('DANGLING_INPUT', `Graph output '${out}' is neither a graph input nor a node.`, { output: out });
  }

  // Kahn's algorithm, keeping the listed order among ready nodes for stable ids and groups.
  const indegree = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const node of graph.nodes) {
    const nodeInputs = node.inputs.filter((i) => byId.has(i));
    indegree.set(node.id, nodeInputs.length);
    for (const i of nodeInputs) consumers.set(i, [...(consumers.get(i) ?? []), node.id]);
  }
  const position = new Map(graph.nodes.map((n, i) => [n.id, i]));
  const ready = graph.nodes.filter((n) => indegree.get(n.id) === 0).map((n) => n.id);
  const order: NodeDef[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => (position.get(a) as number) - (position.get(b) as number));
    const id = ready.shift() as string;
    order.push(byId.get(id) as NodeDef);
    for (const c of consumers.get(id) ?? []) {
      const d = (indegree.get(c) as number) - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  if (order.length !== graph.nodes.length) {
    const inCycle = graph.nodes.filter((n) => (indegree.get(n.id) as number) > 0).map((n) => n.id);
    throw new RsError('CYCLE', `The graph has a cycle through ${inCycle.map((i) => `'${i}'`).join(', ')}.`, { nodes: inCycle });
  }

  const infos = new Map<string, TensorInfo>();
  for (const input of graph.inputs) infos.set(input.id, { shape: [...input.shape], dtype: input.dtype });
  const paramSpecs: ValidatedGraph['paramSpecs'] = new Map();
  for (const node of order) {
    const schema = registry.get(node.op);
    const inputs = node.inputs.map((i) => infos.get(i) as TensorInfo);
    const ctx = inferContext(node, inputs);
    const info = schema.infer(node.attrs, inputs, ctx);
    infos.set(node.id, info);
    const specs = schema.params?.(node.attrs, inputs) ?? {};
    for (const [name, spec] of Object.entries(specs)) {
      if (spec.shape.some((d) => !Number.isInteger(d) || d < 1)) {
        ctx.fail(`parameter '${name}' would have shape ${formatShape(spec.shape)}; every dimension must be a positive integer`);
      }
      paramSpecs.set(paramKey(node.id, name), { ...spec, node: node.id, name });
    }
  }
  return { order, infos, paramSpecs };
}
