import type { GraphDef, TensorInfo } from '../ir/types';
import { paramKey } from '../ir/types';
import type { OpRegistry } from '../ops/registry';
import type { Layout, LayoutMember, ParamAxis, UnitBuilder, UnitMapping } from './builder';

/** A parameter axis indexed by a group's units. */
export interface ParamMember extends UnitMapping {
  kind: 'param';
  /** Parameter key, `nodeId/name`. */
  param: string;
  axis: number;
  role: 'out' | 'in';
}

/** An activation (node output or graph input) whose last axis carries a group's units. */
export interface ActivationMember extends UnitMapping {
  kind: 'activation';
  node: string;
}

/**
 * Units that must change together: removing unit `u` removes it from every member.
 * `id` is the first source's name (`fc1`, or `attn:heads` for a named non-output source).
 */
export interface UnitGroup {
  id: string;
  /** Every source that was merged into this group (residual adds merge several). */
  sources: string[];
  size: number;
  params: ParamMember[];
  activations: ActivationMember[];
  /** Why the group may not be edited; absent when it may. */
  frozen?: string[];
  /**
   * Why inserting units into this group changes the model's function: ops that normalise
   * across its units (`UnitBuilder.normalizes`, e.g. `layerNorm`). Absent when insertion with
   * zero outgoing weights preserves the function. `tx.insertUnits` refuses such a group with
   * `FUNCTION_NOT_PRESERVED` unless given `{ allowFunctionChange: true }`. Removing or
   * permuting units is unaffected.
   */
  insertChangesFunction?: string[];
}

interface RawGroup {
  source: string;
  size: number;
  params: ParamMember[];
  activations: ActivationMember[];
  frozen: string[];
  normalized: string[];
  isFixed: boolean;
}

/** Result of unit analysis over a validated graph. */
export interface UnitAnalysis {
  groups: UnitGroup[];
  /** Every source id (and alias) to its group. */
  byId: Map<string, UnitGroup>;
  /** Feature-axis layout of every tensor, by node/input id (internal group handles resolved). */
  layouts: Map<string, Layout | null>;
}

function sameMapping(a: LayoutMember, b: LayoutMember): boolean {
  return (
    a.size === b.size &&
    a.offset === b.offset &&
    a.inner === b.inner &&
    a.outer.length === b.outer.length &&
    a.outer.every(([c, s], i) => c === b.outer[i][0] && s === b.outer[i][1])
  );
}

/**
 * Derives unit groups from each op's `units` declaration (the Torch-Pruning dependency graph
 * idea, expressed as a union-find over group handles).
 */
export function analyzeUnits(graph: GraphDef, registry: OpRegistry, infos: Map<string, TensorInfo>): UnitAnalysis {
  const raw: RawGroup[] = [];
  const parent: number[] = [];
  const find = (g: number): number => {
    while (parent[g] !== g) {
      parent[g] = parent[parent[g]];
      g = parent[g];
    }
    return g;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) return;
    // Keep the earlier group (first in topological order) as the root, so ids are stable.
    const [keep, drop] = ra < rb ? [ra, rb] : [rb, ra];
    parent[drop] = keep;
  };
  const newGroup = (source: string, size: number, isFixed: boolean, frozen: string[] = []): number => {
    raw.push({ source, size, params: [], activations: [], frozen, normalized: [], isFixed });
    parent.push(raw.length - 1);
    return raw.length - 1;
  };
  const freezeLayout = (layout: Layout | null, reason: string): void => {
    if (!layout) return;
    for (const m of layout.members) raw[m.group].frozen.push(reason);
  };
  const fixedLayout = (source: string, length: number, reason: string): Layout => {
    const g = newGroup(source, length, true, [reason]);
    return { length, members: [{ group: g, size: length, offset: 0, outer: [], inner: 1 }] };
  };

  const layouts = new Map<string, Layout | null>();
  for (const input of graph.inputs) {
    const last = input.shape[input.shape.length - 1];
    if (input.dtype !== 'float32' || typeof last !== 'number' || input.shape.length < 2) {
      layouts.set(input.id, null);
    } else {
      layouts.set(input.id, fixedLayout(`input:${input.id}`, last, `graph input '${input.id}' has a fixed width`));
    }
  }

  for (const node of graph.nodes) {
    const schema = registry.get(node.op);
    const inputLayouts = node.inputs.map((id) => layouts.get(id) ?? null);
    const output = infos.get(node.id) as TensorInfo;
    const outLast = output.shape[output.shape.length - 1];
    const outLength = typeof outLast === 'number' && output.shape.length >= 2 ? outLast : 0;
    let layout: Layout | null;
    const declared = schema.units ?? 'opaque';
    if (declared === 'elementwise') {
      layout = merge(inputLayouts, `node '${node.id}' (${node.op}) combines inputs of different unit structure`);
    } else if (declared === 'opaque') {
      for (const l of inputLayouts) freezeLayout(l, `node '${node.id}' (${node.op}) does not declare how units pass through it`);
      layout = outLength > 0 ? fixedLayout(`node:${node.id}`, outLength, `node '${node.id}' (${node.op}) does not declare units`) : null;
    } else {
      const builder: UnitBuilder<any> = {
        nodeId: node.id,
        attrs: node.attrs,
        inputs: node.inputs.map((id) => infos.get(id) as TensorInfo),
        output,
        input: (i) => inputLayouts[i] ?? null,
        source: (name: string, size: number, params: ParamAxis[], options?: { inner?: number }) => {
          const inner = options?.inner ?? 1;
          const g = newGroup(name === 'out' ? node.id : `${node.id}:${name}`, size, false);
          for (const p of params) {
            raw[g].params.push({
              kind: 'param',
              param: paramKey(node.id, p.param),
              axis: p.axis,
              role: p.role ?? 'out',
              offset: 0,
              outer: [],
              inner: p.inner ?? 1,
            });
          }
          return { length: size * inner, members: [{ group: g, size, offset: 0, outer: [], inner }] };
        },
        consume: (layout, param, axis) => {
          if (!layout) return;
          for (const m of layout.members) {
            raw[m.group].params.push({
              kind: 'param',
              param: paramKey(node.id, param),
              axis,
              role: 'in',
              offset: m.offset,
              outer: m.outer.map(([c, s]) => [c, s] as [number, number]),
              inner: m.inner,
            });
          }
        },
        merge: (...ls) => merge(ls, `node '${node.id}' (${node.op}) couples inputs of different unit structure`),
        concat: (ls, lengths) => {
          const members: LayoutMember[] = [];
          let offset = 0;
          ls.forEach((l, i) => {
            const len = lengths[i];
            const part = l ?? fixedLayout(`node:${node.id}#${i}`, len, `input ${i} of '${node.id}' has no units`);
            for (const m of part.members) members.push({ ...m, offset: m.offset + offset });
            offset += len;
          });
          return { length: offset, members };
        },
        expand: (l, outerCount) => {
          if (!l) return null;
          return {
            length: l.length * outerCount,
            members: l.members.map((m) => ({ ...m, outer: [[outerCount, l.length] as [number, number], ...m.outer] })),
          };
        },
        fixed: (length, reason) => fixedLayout(`node:${node.id}`, length, reason),
        freeze: freezeLayout,
        normalizes: (l, reason) => {
          if (l) for (const m of l.members) raw[m.group].normalized.push(`node '${node.id}' (${node.op}) normalises across these units (${reason})`);
          return l;
        },
      };
      layout = declared(builder);
    }
    layouts.set(node.id, layout);
  }
  for (const out of graph.outputs) freezeLayout(layouts.get(out) ?? null, `'${out}' is a graph output, whose width is fixed`);

  // Activation members.
  for (const [id, layout] of layouts) {
    if (!layout) continue;
    for (const m of layout.members) {
      raw[m.group].activations.push({ kind: 'activation', node: id, offset: m.offset, outer: m.outer, inner: m.inner });
    }
  }

  // Collapse union-find classes into groups.
  const byRoot = new Map<number, UnitGroup>();
  const byId = new Map<string, UnitGroup>();
  raw.forEach((g, index) => {
    const root = find(index);
    let group = byRoot.get(root);
    if (!group) {
      group = { id: raw[root].source, sources: [], size: raw[root].size, params: [], activations: [] };
      byRoot.set(root, group);
    }
    if (!g.isFixed) group.sources.push(g.source);
    group.params.push(...g.params);
    group.activations.push(...g.activations);
    if (g.frozen.length > 0) group.frozen = [...(group.frozen ?? []), ...g.frozen];
    if (g.normalized.length > 0) group.insertChangesFunction = [...(group.insertChangesFunction ?? []), ...g.normalized];
    if (g.size !== group.size) {
      group.frozen = [...(group.frozen ?? []), `sources of different sizes were coupled (${group.size} vs ${g.size})`];
    }
    byId.set(g.source, group);
  });
  // A node whose output carries exactly one group also names it (`relu1` -> the group of `fc1`).
  for (const [id, layout] of layouts) {
    if (!byId.has(id) && layout && layout.members.length === 1) {
      byId.set(id, byRoot.get(find(layout.members[0].group)) as UnitGroup);
    }
  }
  const groups = [...byRoot.values()];
  for (const g of groups) {
    if (g.frozen) g.frozen = [...new Set(g.frozen)];
    if (g.insertChangesFunction) g.insertChangesFunction = [...new Set(g.insertChangesFunction)];
  }
  return { groups, byId, layouts };

  function merge(ls: (Layout | null)[], reason: string): Layout | null {
    const present = ls.filter((l): l is Layout => l !== null);
    if (present.length === 0) return null;
    const first = present[0];
    const aligned = present.every(
      (l) => l.length === first.length && l.members.length === first.members.length && l.members.every((m, i) => sameMapping(m, first.members[i])),
    );
    if (!aligned || present.length !== ls.length) {
      for (const l of present) freezeLayout(l, reason);
      return first;
    }
    for (const l of present.slice(1)) l.members.forEach((m, i) => union(first.members[i].group, m.group));
    return first;
  }
}
