import type { GraphDef, NodeDef } from '../ir/types';
import { createRng } from '../rng';

export interface RandomGraphOptions {
  /** Allow layerNorm nodes (they normalise over units, so inserting units is not function-preserving). */
  norms?: boolean;
  /** Activations to draw from. */
  activations?: ('relu' | 'tanh' | 'sigmoid')[];
  /** Number of blocks. */
  blocks?: number;
}

/**
 * A random valid MLP-style graph mixing dense chains, residual adds, two-branch concats and
 * (optionally) layerNorms, for property tests of unit groups and edits.
 *
 * @example
 * const graph = randomGraph(7, { norms: false });
 */
export function randomGraph(seed: number, options: RandomGraphOptions = {}): GraphDef {
  const rng = createRng(seed);
  const activations = options.activations ?? ['relu', 'tanh', 'sigmoid'];
  const blocks = options.blocks ?? 1 + rng.int(4);
  const inputWidth = 3 + rng.int(4);
  const nodes: NodeDef[] = [];
  let counter = 0;
  const id = (prefix: string): string => `${prefix}${counter++}`;
  const push = (op: string, inputs: string[], attrs: Record<string, unknown> = {}): string => {
    const nodeId = id(op === 'dense' ? 'fc' : op);
    nodes.push({ id: nodeId, op, inputs, attrs });
    return nodeId;
  };
  const act = (x: string): string => push(activations[rng.int(activations.length)], [x]);
  let x = push('dense', ['x'], { units: 2 + rng.int(6) });
  let width = nodes[0].attrs.units as number;
  x = act(x);
  for (let b = 0; b < blocks; b++) {
    const kind = rng.int(4);
    if (kind === 0) {
      width = 2 + rng.int(6);
      x = act(push('dense', [x], { units: width }));
    } else if (kind === 1) {
      // Residual: x + dense(act(dense(x))) with the inner width free and the outer = width.
      const inner = act(push('dense', [x], { units: 2 + rng.int(6) }));
      const branch = push('dense', [inner], { units: width });
      x = push('add', [x, branch]);
    } else if (kind === 2) {
      const a = act(push('dense', [x], { units: 2 + rng.int(5) }));
      const c = act(push('dense', [x], { units: 2 + rng.int(5) }));
      x = push('concat', [a, c], { axis: -1 });
      width = -1; // concat width is recomputed below
    } else if (options.norms) {
      x = push('layerNorm', [x]);
    } else {
      width = 2 + rng.int(6);
      x = act(push('dense', [x], { units: width }));
    }
    if (width === -1) {
      // After a concat, project back to a known width so later residuals have a target.
      width = 2 + rng.int(6);
      x = act(push('dense', [x], { units: width }));
    }
  }
  const out = push('dense', [x], { units: 2 + rng.int(3) });
  return { inputs: [{ id: 'x', shape: [null, inputWidth], dtype: 'float32' }], nodes, outputs: [out] };
}
