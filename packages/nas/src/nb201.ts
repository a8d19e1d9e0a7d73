import { RsError, type GraphDef, type NodeDef } from '@rs/core';
import { defineSpace, type Architecture, type SearchSpace } from './space';

/** The five operations of the NAS-Bench-201 cell, in the benchmark's order. */
export const NB201_OPS = ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'] as const;
/** The six edges of the cell (target <- source), in the order of the architecture string. */
export const NB201_EDGES: ReadonlyArray<readonly [number, number]> = [
  [1, 0],
  [2, 0],
  [2, 1],
  [3, 0],
  [3, 1],
  [3, 2],
];

/** Options of the cell network that {@link cellNetwork} builds. */
export interface CellNetworkOptions {
  /** Input shape [height, width, channels]. Default [28, 28, 1] (MNIST). */
  inputShape?: [number, number, number];
  /** Channels inside the cells. Default 8. */
  channels?: number;
  /** Stacked cells (no reduction cells). Default 1. */
  cells?: number;
  /** Stride of the 3x3 stem convolution. Default 2. */
  stemStride?: number;
  classes?: number;
  /**
   * Head: 'global' (NAS-Bench-201: global average pooling, then the classifier) or 'flatten'
   * (2x2 average pooling, then flatten and the classifier: keeps spatial detail, better for
   * small networks on digits). Default 'global'.
   */
  head?: 'global' | 'flatten';
}

function formatNb201(arch: Architecture): string {
  const ops = arch.map((i) => NB201_OPS[i]);
  return `|${ops[0]}~0|+|${ops[1]}~0|${ops[2]}~1|+|${ops[3]}~0|${ops[4]}~1|${ops[5]}~2|`;
}

function parseNb201(text: string): number[] {
  const fail = (why: string): never => {
    throw new RsError('INVALID_ARCHITECTURE', `'${text}' is not a NAS-Bench-201 architecture string: ${why}. Expected e.g. |nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|.`, { text });
  };
  const nodes = text.split('+');
  if (nodes.length !== 3) fail(`${nodes.length} node groups separated by '+', expected 3`);
  const arch: number[] = [];
  nodes.forEach((group, j) => {
    if (!group.startsWith('|') || !group.endsWith('|')) fail(`node ${j + 1}'s group '${group}' must start and end with '|'`);
    const edges = group.slice(1, -1).split('|');
    if (edges.length !== j + 1) fail(`node ${j + 1} has ${edges.length} incoming edges, expected ${j + 1}`);
    edges.forEach((edge, i) => {
      const [op, source, extra] = edge.split('~');
      if (extra !== undefined || source !== String(i)) fail(`edge '${edge}' of node ${j + 1} must read from node ${i} ('op~${i}')`);
      const index = (NB201_OPS as readonly string[]).indexOf(op);
      if (index < 0) fail(`unknown operation '${op}' (one of ${NB201_OPS.join(', ')})`);
      arch.push(index);
    });
  });
  return arch;
}

/**
 * The NAS-Bench-201 cell space (Dong & Yang 2020): 6 edges x 5 operations = 15,625 cells,
 * encoded as the benchmark's architecture strings. `build` gives a trainable cell network
 * (stem, stacked cells, global pooling, classifier) for `options`' input.
 *
 * @example
 * const space = nb201Space();
 * space.decode('|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|');
 */
export function nb201Space(options: CellNetworkOptions = {}): SearchSpace {
  return defineSpace({
    name: 'nas-bench-201',
    choices: NB201_EDGES.map(([to, from]) => ({ name: `${to}<-${from}`, options: NB201_OPS })),
    encode: formatNb201,
    decode: parseNb201,
    build: (arch) => cellNetwork(arch.map((i) => [NB201_OPS[i]]), options),
  });
}

/**
 * Builds a cell network. Each edge carries one operation, or several (a DARTS supernet edge:
 * every candidate computed and mixed by `nas.mixed`, the `edgeNode` callback of
 * {@link cellNetwork}'s caller). Operations follow NAS-Bench-201: `nor_conv_kxk` is
 * ReLU -> conv (no bias) -> batchNorm; `avg_pool_3x3` is stride 1, same padding; `none` is no edge
 * (a node with no incoming edge is zero, and so are edges leaving it).
 */
export function cellNetwork(edgeOps: ReadonlyArray<readonly string[]>, options: CellNetworkOptions = {}, mixedAttrs: Record<string, unknown> = {}): GraphDef {
  if (edgeOps.length !== NB201_EDGES.length) throw new RsError('INVALID_ARCHITECTURE', `a cell has ${NB201_EDGES.length} edges, got ${edgeOps.length}.`);
  const [h, w, c] = options.inputShape ?? [28, 28, 1];
  const channels = options.channels ?? 8;
  const cells = options.cells ?? 1;
  const stride = options.stemStride ?? 2;
  const nodes: NodeDef[] = [
    { id: 'stem.conv', op: 'conv2d', inputs: ['x'], attrs: { filters: channels, kernelSize: 3, strides: stride, padding: 'same', useBias: false } },
    { id: 'stem.bn', op: 'batchNorm', inputs: ['stem.conv'], attrs: {} },
  ];
  let previous = 'stem.bn';
  for (let cell = 0; cell < cells; cell++) {
    const state: Array<string | null> = [previous, null, null, null];
    for (let to = 1; to <= 3; to++) {
      const incoming: string[] = [];
      NB201_EDGES.forEach(([target, from], e) => {
        if (target !== to) return;
        const source = state[from];
        const ops = edgeOps[e];
        if (ops.length === 1) {
          if (source === null || ops[0] === 'none') return;
          // Named like a supernet candidate, so a discretized supernet and a built cell coincide.
          incoming.push(opNode(nodes, `c${cell}.e${to}${from}.${ops[0]}`, ops[0], source, channels));
          return;
        }
        // A supernet edge: every candidate, mixed. Its source always exists (node 0, or mixed nodes).
        const base = `c${cell}.e${to}${from}`;
        const inputs = ops.map((op) => (op === 'none' ? zeroNode(nodes, `${base}.none`, source as string) : opNode(nodes, `${base}.${op}`, op, source as string, channels)));
        nodes.push({ id: base, op: 'nas.mixed', inputs, attrs: { candidates: [...ops], ...mixedAttrs } });
        incoming.push(base);
      });
      if (incoming.length === 0) state[to] = null;
      else if (incoming.length === 1) state[to] = incoming[0];
      else {
        nodes.push({ id: `c${cell}.n${to}`, op: 'add', inputs: incoming, attrs: {} });
        state[to] = `c${cell}.n${to}`;
      }
    }
    previous = state[3] ?? zeroNode(nodes, `c${cell}.zero`, previous);
  }
  const side = Math.ceil(h / stride);
  const sideW = Math.ceil(w / stride);
  const pool = options.head === 'flatten' ? { poolSize: 2, padding: 'valid' } : { poolSize: [side, sideW], padding: 'valid' };
  nodes.push(
    { id: 'head.bn', op: 'batchNorm', inputs: [previous], attrs: {} },
    { id: 'head.relu', op: 'relu', inputs: ['head.bn'], attrs: {} },
    { id: 'head.pool', op: 'avgPool2d', inputs: ['head.relu'], attrs: pool },
    { id: 'head.flatten', op: 'flatten', inputs: ['head.pool'], attrs: {} },
    { id: 'head.fc', op: 'dense', inputs: ['head.flatten'], attrs: { units: options.classes ?? 10 } },
  );
  return { inputs: [{ id: 'x', shape: [null, h, w, c], dtype: 'float32' }], nodes, outputs: ['head.fc'] };
}

function zeroNode(nodes: NodeDef[], id: string, source: string): string {
  nodes.push({ id, op: 'nas.zero', inputs: [source], attrs: {} });
  return id;
}

function opNode(nodes: NodeDef[], id: string, op: string, source: string, channels: number): string {
  switch (op) {
    case 'skip_connect':
      return source;
    case 'nor_conv_1x1':
    case 'nor_conv_3x3': {
      const k = op === 'nor_conv_1x1' ? 1 : 3;
      nodes.push(
        { id: `${id}.relu`, op: 'relu', inputs: [source], attrs: {} },
        { id: `${id}.conv`, op: 'conv2d', inputs: [`${id}.relu`], attrs: { filters: channels, kernelSize: k, padding: 'same', useBias: false } },
        { id: `${id}.bn`, op: 'batchNorm', inputs: [`${id}.conv`], attrs: {} },
      );
      return `${id}.bn`;
    }
    case 'avg_pool_3x3':
      nodes.push({ id: `${id}.pool`, op: 'avgPool2d', inputs: [source], attrs: { poolSize: 3, strides: 1, padding: 'same' } });
      return `${id}.pool`;
    default:
      throw new RsError('INVALID_ARCHITECTURE', `unknown cell operation '${op}' (one of ${NB201_OPS.join(', ')}).`, { op });
  }
}
