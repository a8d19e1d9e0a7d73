import type { EditChange, GraphDef, JournalEntry, StructureBefore, UnitGroup } from '@rs/core';
import type { GraphSnapshot, SnapshotNode } from './types';

/** How one node's output width moves with a group's unit count. */
interface Membership {
  node: string;
  /** Positions on the node's last axis per unit of the group. */
  perUnit: number;
}

/** Current graph facts the reconstruction starts from. */
export interface CurrentGraph {
  graph: GraphDef;
  /** Last-axis size of every node and input output. */
  widths: Map<string, number | null>;
  groups: readonly UnitGroup[];
}

function lastAxis(shape: readonly (number | null)[]): number | null {
  return shape.length === 0 ? 1 : shape[shape.length - 1];
}

/** The snapshot of the current graph (exact). */
export function currentSnapshot(current: CurrentGraph, step: number): GraphSnapshot {
  const nodes: SnapshotNode[] = [
    ...current.graph.inputs.map((i) => ({ id: i.id, op: 'input', inputs: [], width: current.widths.get(i.id) ?? lastAxis(i.shape) })),
    ...current.graph.nodes.map((n) => ({ id: n.id, op: n.op, inputs: [...n.inputs], width: current.widths.get(n.id) ?? null })),
  ];
  return { step, nodes, outputs: [...current.graph.outputs], exact: true };
}

function memberships(groups: readonly UnitGroup[]): Map<string, Membership[]> {
  const out = new Map<string, Membership[]>();
  for (const group of groups) {
    const members = group.activations.map((a) => ({ node: a.node, perUnit: a.inner * a.outer.reduce((p, [count]) => p * count, 1) }));
    for (const id of new Set([group.id, ...group.sources])) out.set(id, members);
  }
  return out;
}

const INSERTED = /^inserted (\S+) '(.+?)'(?: after '(.+)')?$/;
const REMOVED = /^removed (\S+) '(.+?)', consumers now read '(.+)'$/;
const REPLACED = /^replaced (\S+) '(.+?)' by (\S+) '(.+)'$/;
const OUTPUTS = /^outputs \[(.*)\] -> \[(.*)\]$/;

/** Ops whose output has the width of their first input (for widths of re-added nodes). */
const SAME_WIDTH = new Set(['relu', 'tanh', 'sigmoid', 'gelu', 'dropout', 'layerNorm', 'batchNorm', 'softmax', 'add', 'identity']);

class Draft {
  nodes: SnapshotNode[];
  outputs: string[];
  constructor(snapshot: GraphSnapshot) {
    this.nodes = snapshot.nodes.map((n) => ({ ...n, inputs: [...n.inputs] }));
    this.outputs = [...snapshot.outputs];
  }
  get(id: string): SnapshotNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }
  rename(from: string, to: string): void {
    for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
    this.outputs = this.outputs.map((o) => (o === from ? to : o));
  }
  snapshot(step: number): GraphSnapshot {
    return { step, nodes: this.nodes, outputs: this.outputs, exact: false };
  }
}

/**
 * Undoes a node-level change from its structured record (journals written since
 * `EditChange.before` exists): exact, node order included.
 */
function undoRecorded(change: EditChange, before: StructureBefore, draft: Draft, seq: number): string | undefined {
  // The node the change added (insertNode) or put in place (replaceNode) goes.
  const added = change.kind === 'insertNode' ? change.target : change.kind === 'replaceNode' ? (before.replacement ?? change.target) : undefined;
  if (added !== undefined) {
    const at = draft.nodes.findIndex((n) => n.id === added);
    if (at < 0) return `#${seq}: node '${added}' of this ${change.kind} is not in the later graph; the graph before it is drawn without undoing it.`;
    draft.nodes.splice(at, 1);
  }
  // The node it removed or replaced comes back where it was, as it was.
  const node = before.node;
  if (node) {
    const after = node.previous === undefined ? draft.nodes.filter((n) => n.op === 'input').length : draft.nodes.findIndex((n) => n.id === node.previous) + 1;
    draft.nodes.splice(after > 0 ? after : draft.nodes.length, 0, { id: node.id, op: node.op, inputs: [...node.inputs], width: lastAxis(node.shape) });
  }
  for (const r of before.rewired ?? []) {
    const reader = draft.get(r.id);
    if (reader) reader.inputs = [...r.inputs];
  }
  if (before.outputs) draft.outputs = [...before.outputs];
  return undefined;
}

/**
 * Undoes one journaled change on `draft` (the graph after it), giving the graph before it, as far
 * as the change record allows. Returns a note when something could not be recovered.
 */
function undo(change: EditChange, draft: Draft, members: Map<string, Membership[]>, seq: number): string | undefined {
  if (change.before && ['insertNode', 'removeNode', 'replaceNode', 'setOutputs'].includes(change.kind)) return undoRecorded(change, change.before, draft, seq);
  // Journals saved before `before` existed: what the summary says.
  switch (change.kind) {
    case 'removeUnits':
    case 'insertUnits': {
      if (!change.size) return `#${seq}: ${change.kind} on '${change.target}' has no size record; widths before it are not reconstructed.`;
      const delta = change.size.before - change.size.after;
      const known = members.get(change.target);
      const list = known ?? (draft.get(change.target) ? [{ node: change.target, perUnit: 1 }] : []);
      let touched = 0;
      for (const m of list) {
        const node = draft.get(m.node);
        if (!node || node.width === null) continue;
        const width = node.width + delta * m.perUnit;
        node.width = width > 0 ? width : null;
        touched++;
      }
      if (!known) return `#${seq}: group '${change.target}' is not in the current graph; only a node of that id (if any) was resized back.`;
      if (touched === 0) return `#${seq}: none of the nodes of group '${change.target}' is in the reconstructed graph.`;
      return undefined;
    }
    case 'insertNode': {
      const match = INSERTED.exec(change.summary);
      const node = draft.get(change.target);
      if (!node) return `#${seq}: inserted node '${change.target}' is not in the later graph.`;
      draft.nodes = draft.nodes.filter((n) => n !== node);
      const after = match?.[3];
      if (after !== undefined) {
        draft.rename(node.id, after);
        return undefined;
      }
      const readers = draft.nodes.filter((n) => n.inputs.includes(node.id));
      if (readers.length === 0 && !draft.outputs.includes(node.id)) return undefined;
      // Later edits rewired readers to this node; the journal does not say what they read before.
      const fallback = node.inputs[0];
      for (const r of readers) r.approximate = true;
      if (fallback !== undefined) draft.rename(node.id, fallback);
      return `#${seq}: readers of inserted node '${node.id}' (${readers.map((r) => r.id).join(', ') || 'graph outputs'}) are drawn reading '${fallback ?? '?'}' before it; the journal does not record their earlier inputs.`;
    }
    case 'removeNode': {
      const match = REMOVED.exec(change.summary);
      if (!match) return `#${seq}: removal of '${change.target}' has no readable summary; not restored.`;
      const [, op, , bypass] = match;
      const source = draft.get(bypass);
      const width = SAME_WIDTH.has(op) && source ? source.width : null;
      const restored: SnapshotNode = { id: change.target, op, inputs: [bypass], width, approximate: true };
      const at = draft.nodes.findIndex((n) => n.id === bypass);
      draft.nodes.splice(at + 1, 0, restored);
      return `#${seq}: removed ${op} '${change.target}' is restored reading only '${bypass}'${width === null ? ', width unknown' : ''}; its other inputs and its readers are not recorded by the journal.`;
    }
    case 'replaceNode': {
      const match = REPLACED.exec(change.summary);
      if (!match) return `#${seq}: replacement of '${change.target}' has no readable summary.`;
      const [, oldOp, oldId, , newId] = match;
      const node = draft.get(newId);
      if (!node) return `#${seq}: replacing node '${newId}' is not in the later graph.`;
      node.id = oldId;
      node.op = oldOp;
      node.approximate = true;
      if (newId !== oldId) draft.rename(newId, oldId);
      return `#${seq}: '${oldId}' is drawn with the inputs and width of its replacement; the journal does not record the old ones.`;
    }
    case 'setOutputs': {
      const match = OUTPUTS.exec(change.summary);
      if (!match) return `#${seq}: earlier graph outputs are not recorded.`;
      draft.outputs = match[1] === '' ? [] : match[1].split(', ');
      return undefined;
    }
    default:
      // Masks, values, trainability, permutations and annotations leave the structure as it is.
      return undefined;
  }
}

/**
 * Walks the journal backwards from the current graph, undoing each change, and returns the
 * structure after every step (index 0: before the first entry) plus notes on what the journal
 * records too little of to restore exactly.
 */
export function reconstructHistory(current: CurrentGraph, journal: readonly JournalEntry[]): { snapshots: GraphSnapshot[]; notes: string[] } {
  const members = memberships(current.groups);
  const snapshots: GraphSnapshot[] = new Array(journal.length + 1);
  snapshots[journal.length] = currentSnapshot(current, journal.length);
  const notes: string[] = [];
  for (let k = journal.length; k >= 1; k--) {
    const entry = journal[k - 1];
    const draft = new Draft(snapshots[k]);
    for (let c = entry.changes.length - 1; c >= 0; c--) {
      const note = undo(entry.changes[c], draft, members, entry.seq);
      if (note) notes.push(note);
    }
    snapshots[k - 1] = draft.snapshot(k - 1);
  }
  return { snapshots, notes: notes.reverse() };
}
