import type { GraphDef } from './types';

/**
 * The nodes that computing `targets` needs: the targets themselves and every node reached by
 * walking their inputs backwards. Graph inputs and unknown ids are not in the set. `alias`
 * redirects the walk: an aliased node is in the set, but the walk continues from its alias
 * instead of its inputs (a skipped block whose output is read from elsewhere). Nodes in `known`
 * (values already computed) are in the set, but the walk stops there.
 *
 * @example
 * ancestors(graph, ['exit:relu1']).size; // nodes an early-exit head depends on
 */
export function ancestors(
  graph: Pick<GraphDef, 'nodes'>,
  targets: Iterable<string>,
  alias: ReadonlyMap<string, string> = new Map(),
  known?: { has(id: string): boolean },
): Set<string> {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const stack = [...targets];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    const node = byId.get(id);
    if (!node || seen.has(id)) continue;
    seen.add(id);
    if (known?.has(id)) continue;
    const to = alias.get(id);
    if (to !== undefined) stack.push(to);
    else stack.push(...node.inputs);
  }
  return seen;
}
