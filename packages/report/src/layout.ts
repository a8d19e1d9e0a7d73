import type { GraphSnapshot, SnapshotNode } from './types';

/** Why a node is highlighted when comparing the graph before and after an entry. */
export type NodeStatus = 'unchanged' | 'resized' | 'inserted' | 'removed';

/** Layer (longest path from an input) and slot within the layer, for a set of snapshots drawn together. */
export interface Placement {
  depth: number;
  slot: number;
}

/**
 * Places the union of the nodes of `snapshots` on layers: depth = longest path from a graph
 * input, slot = order of first appearance within the layer. One placement for all snapshots
 * keeps a node at the same spot in the before and after panels.
 */
export function placeNodes(snapshots: readonly GraphSnapshot[]): Map<string, Placement> {
  const inputs = new Map<string, Set<string>>();
  const order: string[] = [];
  for (const s of snapshots) {
    for (const n of s.nodes) {
      if (!inputs.has(n.id)) {
        inputs.set(n.id, new Set());
        order.push(n.id);
      }
      for (const i of n.inputs) (inputs.get(n.id) as Set<string>).add(i);
    }
  }
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    // A reconstructed union may hold a cycle in theory; cut it rather than recurse forever.
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const i of inputs.get(id) ?? []) if (inputs.has(i)) d = Math.max(d, depthOf(i) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const placement = new Map<string, Placement>();
  const used = new Map<number, number>();
  for (const id of order) {
    const d = depthOf(id);
    const slot = used.get(d) ?? 0;
    used.set(d, slot + 1);
    placement.set(id, { depth: d, slot });
  }
  return placement;
}

/** Status of every node of `side` when `before` becomes `after`. */
export function nodeStatus(before: GraphSnapshot, after: GraphSnapshot, side: 'before' | 'after'): Map<string, NodeStatus> {
  const b = new Map(before.nodes.map((n) => [n.id, n]));
  const a = new Map(after.nodes.map((n) => [n.id, n]));
  const out = new Map<string, NodeStatus>();
  const own = side === 'before' ? before.nodes : after.nodes;
  const other = side === 'before' ? a : b;
  for (const n of own) {
    const m = other.get(n.id);
    if (!m) out.set(n.id, side === 'before' ? 'removed' : 'inserted');
    else out.set(n.id, m.width !== n.width || m.op !== n.op ? 'resized' : 'unchanged');
  }
  return out;
}

function key(n: SnapshotNode): string {
  return `${n.id}|${n.op}|${n.width}|${n.inputs.join(',')}`;
}

/** True when two snapshots have the same nodes, ops, widths, edges and outputs. */
export function sameStructure(a: GraphSnapshot, b: GraphSnapshot): boolean {
  if (a.nodes.length !== b.nodes.length || a.outputs.join(',') !== b.outputs.join(',')) return false;
  const keys = new Set(a.nodes.map(key));
  return b.nodes.every((n) => keys.has(key(n)));
}
