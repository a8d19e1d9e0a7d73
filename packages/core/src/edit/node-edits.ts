// Node edits: insert, remove, replace nodes and set the graph's outputs.
import type { Tensor } from '../tf';
import { RsError } from '../errors';
import type { NodeDef } from '../ir/types';
import { splitParamKey } from '../ir/types';
import { checkJsonSafe } from '../ir/json-safe';
import type { StructureBefore } from './journal';
import { dropParam, type Draft } from './draft';
import { nodeRecord, refresh, rewire } from './refresh';

export interface InsertNodeOptions {
  /**
   * Rewire: every consumer of this id (and graph outputs naming it) reads the new node instead.
   * The new node itself should read `after`.
   */
  after?: string;
  /** Values for the new node's parameters, by name (`kernel`); others are initialised. */
  params?: Record<string, Tensor>;
  /**
   * Element masks (1 keep, 0 pruned) for the new node's parameters, by name, each shaped like
   * its parameter and holding only 0 and 1: for a node whose `params` copy masked weights. The
   * parameter's value is multiplied by its mask. Default: no mask (dense parameters).
   */
  masks?: Record<string, Tensor>;
}

/** `Transaction.insertNode` on a draft. */
export function insertNode(d: Draft, node: NodeDef, options: InsertNodeOptions = {}): void {
  checkJsonSafe(node, `insertNode '${String(node?.id)}'`);
  const copy: NodeDef = JSON.parse(JSON.stringify({ ...node, attrs: node.attrs ?? {}, inputs: node.inputs ?? [] })) as NodeDef;
  let before: StructureBefore = {};
  if (options.after !== undefined) {
    const after = options.after;
    if (!d.graph.nodes.some((n) => n.id === after) && !d.graph.inputs.some((i) => i.id === after)) {
      throw new RsError('UNKNOWN_NODE', `insertNode: 'after' names '${after}', which is not in the graph.`, { node: after });
    }
    before = rewire(d, after, copy.id);
  }
  const at = d.graph.nodes.findIndex((n) => n.inputs.includes(copy.id));
  if (at >= 0) d.graph.nodes.splice(at, 0, copy);
  else d.graph.nodes.push(copy);
  d.changes.push({ kind: 'insertNode', target: copy.id, summary: `inserted ${copy.op} '${copy.id}'${options.after ? ` after '${options.after}'` : ''}`, before });
  refresh(d, undefined, copy.id, options.params, options.masks);
}

/** `Transaction.removeNode` on a draft. */
export function removeNode(d: Draft, id: string, options: { bypass?: string } = {}): void {
  const index = d.graph.nodes.findIndex((n) => n.id === id);
  if (index < 0) throw new RsError('UNKNOWN_NODE', `removeNode: no node '${id}'.`, { node: id });
  const node = d.graph.nodes[index];
  const bypass = options.bypass ?? node.inputs[0];
  if (bypass === undefined) throw new RsError('INVALID_EDIT', `removeNode: node '${id}' has no input to bypass to; pass { bypass }.`, { node: id });
  const record = nodeRecord(d, index);
  d.graph.nodes.splice(index, 1);
  const before = { node: record, ...rewire(d, id, bypass) };
  d.changes.push({ kind: 'removeNode', target: id, summary: `removed ${node.op} '${id}', consumers now read '${bypass}'`, before });
  refresh(d);
}

/** `Transaction.replaceNode` on a draft. */
export function replaceNode(d: Draft, id: string, node: Omit<NodeDef, 'id'> & { id?: string }, options: { params?: Record<string, Tensor>; masks?: Record<string, Tensor> } = {}): void {
  const index = d.graph.nodes.findIndex((n) => n.id === id);
  if (index < 0) throw new RsError('UNKNOWN_NODE', `replaceNode: no node '${id}'.`, { node: id });
  const old = d.graph.nodes[index];
  const record = nodeRecord(d, index);
  checkJsonSafe(node, `replaceNode '${id}'`);
  const next: NodeDef = JSON.parse(JSON.stringify({ ...old, ...node, id: node.id ?? id })) as NodeDef;
  d.graph.nodes[index] = next;
  const before: StructureBefore = next.id === id ? { node: record } : { node: record, replacement: next.id, ...rewire(d, id, next.id) };
  if (next.op !== old.op || next.id !== id) {
    for (const key of [...d.params.keys()]) if (splitParamKey(key)[0] === id) dropParam(d, key);
  }
  d.changes.push({ kind: 'replaceNode', target: id, summary: `replaced ${old.op} '${id}' by ${next.op} '${next.id}'`, before });
  refresh(d, undefined, next.id, options.params, options.masks);
}

/** `Transaction.setOutputs` on a draft. */
export function setOutputs(d: Draft, ids: string[]): void {
  if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string')) {
    throw new RsError('INVALID_ARGUMENT', 'setOutputs takes a non-empty array of node ids.');
  }
  for (const id of ids) {
    if (!d.graph.nodes.some((n) => n.id === id) && !d.graph.inputs.some((i) => i.id === id)) {
      throw new RsError('UNKNOWN_NODE', `setOutputs: '${id}' is not a node or input of the graph.`, { node: id });
    }
  }
  const outputs = [...d.graph.outputs];
  d.graph.outputs = [...ids];
  d.changes.push({ kind: 'setOutputs', target: ids.join(','), summary: `outputs [${outputs.join(', ')}] -> [${ids.join(', ')}]`, before: { outputs } });
  refresh(d);
}
