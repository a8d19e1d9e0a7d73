import { RsError, formatShape, validateGraph, type GraphDef, type NodeDef, type OpRegistry, type Shape } from '@rs/core';

/** A layer of a column that receives lateral connections: a dense or conv2d node. */
export interface ColumnLayer {
  /** Node id inside the column (without the column prefix), e.g. `fc2`. */
  node: string;
  op: 'dense' | 'conv2d';
  /** What the layer reads (`h_{i-1}`): a node id inside the column, or the graph input. */
  input: string;
  /** Shape of `input`. */
  inputShape: Shape;
}

/** The structure of one column, derived from its architecture graph. */
export interface ColumnShape {
  input: { id: string; shape: Shape };
  output: string;
  layers: ColumnLayer[];
}

const LAYER_OPS = new Set(['dense', 'conv2d']);

/**
 * Finds the layers of a column architecture: its dense/conv2d nodes in execution order, and
 * what each reads. The graph must have one input and one output (the task head).
 */
export function analyzeColumn(graph: GraphDef, registry: OpRegistry): ColumnShape {
  if (!graph || !Array.isArray(graph.inputs) || graph.inputs.length !== 1 || !Array.isArray(graph.outputs) || graph.outputs.length !== 1) {
    throw new RsError('SHAPE_MISMATCH', 'A column architecture needs exactly one input and one output (the task head).', {});
  }
  const validated = validateGraph(graph, registry);
  const layers: ColumnLayer[] = [];
  for (const node of validated.order) {
    if (!LAYER_OPS.has(node.op)) continue;
    const info = validated.infos.get(node.inputs[0]);
    layers.push({ node: node.id, op: node.op as ColumnLayer['op'], input: node.inputs[0], inputShape: info ? [...info.shape] : [] });
  }
  if (layers.length === 0) throw new RsError('SHAPE_MISMATCH', 'A column architecture needs at least one dense or conv2d layer.', {});
  return { input: { id: graph.inputs[0].id, shape: [...graph.inputs[0].shape] }, output: graph.outputs[0], layers };
}

/** Options of the lateral adapters of a new column. */
export interface AdapterOptions {
  /**
   * Width of the adapter's projection `V` (units for dense, 1x1-conv filters for conv). Default:
   * the width of the earlier column's activation it reads (its features or channels).
   */
  width?: number | ((layer: ColumnLayer, sourceWidth: number) => number);
  /** Initial value of the learned scalar `alpha`. Default 1. */
  alphaInit?: number;
}

/** Node ids of one lateral adapter: `scale -> proj (V) -> act -> lateral (U)`. */
export interface LateralIds {
  /** Column the lateral reads from. */
  from: number;
  scale: string;
  proj: string;
  act: string;
  lateral: string;
}

/** Ids of the lateral adapter from column `from` into layer `layer` of the column with `prefix`. */
export function lateralIds(prefix: string, layer: string, from: number): LateralIds {
  const base = `${prefix}${layer}.lat${from}`;
  return { from, scale: `${base}.scale`, proj: `${base}.proj`, act: `${base}.act`, lateral: `${base}.u` };
}

/** Id of the node summing a layer's own output and its laterals. */
export function sumId(prefix: string, layer: string): string {
  return `${prefix}${layer}.sum`;
}

/** An earlier column, as seen by a new one. */
export interface EarlierColumn {
  index: number;
  prefix: string;
  shape: ColumnShape;
}

const width = (shape: Shape): number => shape[shape.length - 1] as number;

/**
 * The nodes of a new column (ids prefixed with `prefix`), with a lateral adapter from every
 * earlier column's `h_{i-1}` into each layer `i >= 1` (Rusu et al. 2016, eq. 2):
 * `h_i = f(W_i h_{i-1} + sum_j U_i^j relu(V_i^j (alpha_i^j h_{i-1}^j)))`. Conv layers get 1x1-conv
 * projections and a lateral conv with the layer's own kernel, strides and padding.
 * Throws SHAPE_MISMATCH when the column cannot be joined to the earlier ones.
 */
export function buildColumn(
  graph: GraphDef,
  shape: ColumnShape,
  prefix: string,
  earlier: EarlierColumn[],
  adapter: AdapterOptions = {},
): { nodes: NodeDef[]; output: string } {
  const first = earlier[0]?.shape;
  if (first) {
    const same = first.input.shape.length === shape.input.shape.length && first.input.shape.every((d, i) => d === shape.input.shape[i]);
    if (!same) {
      throw new RsError('SHAPE_MISMATCH', `The new column reads input ${formatShape(shape.input.shape)}, but the network's input is ${formatShape(first.input.shape)}.`, {});
    }
  }
  for (const column of earlier) {
    if (column.shape.layers.length !== shape.layers.length) {
      throw new RsError(
        'SHAPE_MISMATCH',
        `The new column has ${shape.layers.length} dense/conv2d layers but column ${column.index} has ${column.shape.layers.length}; laterals join layer i-1 to layer i, so the counts must match.`,
        { column: column.index },
      );
    }
  }
  const networkInput = first ? first.input.id : shape.input.id;
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const layerIndex = new Map(shape.layers.map((l, i) => [l.node, i]));
  const withLaterals = (id: string): boolean => earlier.length > 0 && (layerIndex.get(id) ?? 0) > 0;
  const rename = (id: string): string => {
    if (id === shape.input.id) return networkInput;
    return withLaterals(id) ? sumId(prefix, id) : `${prefix}${id}`;
  };
  const nodes: NodeDef[] = [];
  for (const node of graph.nodes) {
    nodes.push({ id: `${prefix}${node.id}`, op: node.op, inputs: node.inputs.map(rename), attrs: JSON.parse(JSON.stringify(node.attrs ?? {})) as Record<string, unknown> });
    const i = layerIndex.get(node.id);
    if (i === undefined || !withLaterals(node.id)) continue;
    const layer = shape.layers[i];
    const laterals: string[] = [];
    for (const column of earlier) {
      const source = column.shape.layers[i];
      const sourceId = source.input === column.shape.input.id ? networkInput : `${column.prefix}${source.input}`;
      const ids = lateralIds(prefix, node.id, column.index);
      const sourceWidth = width(source.inputShape);
      const w = typeof adapter.width === 'function' ? adapter.width(layer, sourceWidth) : adapter.width ?? sourceWidth;
      if (!Number.isInteger(w) || w < 1) throw new RsError('INVALID_ARGUMENT', `Adapter width must be a positive integer, got ${String(w)}.`, {});
      const where = `lateral from column ${column.index} ('${sourceId}', ${formatShape(source.inputShape)}) into layer '${node.id}' (input ${formatShape(layer.inputShape)})`;
      let proj: NodeDef;
      let lateral: NodeDef;
      if (layer.op === 'dense') {
        if (source.inputShape.length !== 2) {
          throw new RsError('SHAPE_MISMATCH', `${where}: a dense layer takes laterals from flat [batch, features] activations.`, { column: column.index, layer: node.id });
        }
        proj = { id: ids.proj, op: 'dense', inputs: [ids.scale], attrs: { units: w } };
        lateral = { id: ids.lateral, op: 'dense', inputs: [ids.act], attrs: { units: node.attrs.units, useBias: false } };
      } else {
        const s = source.inputShape;
        const t = layer.inputShape;
        if (s.length !== 4 || s[1] !== t[1] || s[2] !== t[2]) {
          throw new RsError('SHAPE_MISMATCH', `${where}: a conv layer takes laterals from [batch, H, W, C] maps with its own input's height and width.`, {
            column: column.index,
            layer: node.id,
          });
        }
        proj = { id: ids.proj, op: 'conv2d', inputs: [ids.scale], attrs: { filters: w, kernelSize: 1 } };
        const { kernelSize, strides, padding } = node.attrs;
        lateral = { id: ids.lateral, op: 'conv2d', inputs: [ids.act], attrs: { filters: node.attrs.filters, kernelSize, strides, padding, useBias: false } };
      }
      nodes.push(
        { id: ids.scale, op: 'learnedScale', inputs: [sourceId], attrs: { init: adapter.alphaInit ?? 1 } },
        proj,
        { id: ids.act, op: 'relu', inputs: [ids.proj], attrs: {} },
        lateral,
      );
      laterals.push(ids.lateral);
    }
    nodes.push({ id: sumId(prefix, node.id), op: 'add', inputs: [`${prefix}${node.id}`, ...laterals], attrs: {} });
  }
  if (!byId.has(shape.output)) throw new RsError('SHAPE_MISMATCH', `The column's output '${shape.output}' is not one of its nodes.`, {});
  return { nodes, output: rename(shape.output) };
}
