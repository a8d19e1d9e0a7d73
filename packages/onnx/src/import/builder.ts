import type { GraphInput, NodeDef } from '@rs/core';
import type { Attrs, Constant } from './decode';

/**
 * How an imported value's ONNX axes map to the IR tensor holding it:
 * - `plain`: the same axes (dense features, sequences).
 * - `nchw`: an ONNX `[N, C, H, W]` value held as the IR's `[N, H, W, C]`.
 * - `flat`: an ONNX `Flatten` of an `[N, C, H, W]` value (features in C, H, W order) held as the
 *   IR's flatten of `[N, H, W, C]` (H, W, C order); only a dense layer may read it, and its kernel
 *   rows are permuted to match.
 */
export type Layout = { kind: 'plain' } | { kind: 'nchw' } | { kind: 'flat'; c: number; h: number; w: number };

/** A value of the ONNX graph during import. */
export type Value =
  | { kind: 'const'; c: Constant }
  /** An IR tensor: `dims` are the ONNX dims (null: unknown, the batch). */
  | { kind: 'ir'; id: string; layout: Layout; dims: (number | null)[]; dtype: 'float32' | 'int32'; single: boolean };

/** One node or pattern the import refuses. */
export interface ImportProblem {
  /** The ONNX node's name (or its first output's name when it has none). */
  node: string;
  opType: string;
  /** The opset of the node's domain the model imports. */
  opset: number;
  domain: string;
  reason: string;
}

/** Thrown by a handler for a node (or pattern) it cannot import; collected, never shown alone. */
export class Unsupported extends Error {}

export function unsupported(reason: string): never {
  throw new Unsupported(reason);
}

export interface ParamValue {
  data: Float32Array;
  shape: number[];
}

/** What a handler sees of the node it converts. */
export interface NodeContext {
  name: string;
  opType: string;
  opset: number;
  attrs: Attrs;
  inputs: (Value | undefined)[];
  /** How many times each of the node's outputs is read (graph outputs count as a read). */
  uses: number[];
  /** The ONNX name of the node's first output. */
  output: string;
  /** Whether an output after the first (a Dropout mask, MaxPool indices) is read. */
  outputsUsedBeyondFirst: boolean;
  /** The ONNX names of the node's inputs (initializer names carry PyTorch's module paths). */
  weightNames: (string | undefined)[];
  builder: GraphBuilder;
}

function sanitize(name: string): string {
  const cleaned = name.replace(/^[/:.]+/, '').replace(/::/g, '.').replace(/\//g, '.').replace(/[^A-Za-z0-9_.:-]/g, '_');
  return cleaned.length > 0 ? cleaned : 'node';
}

/** Accumulates the IR graph and its parameter values. */
export class GraphBuilder {
  readonly inputs: GraphInput[] = [];
  readonly nodes: NodeDef[] = [];
  readonly params = new Map<string, ParamValue>();
  private readonly taken = new Set<string>();
  private readonly byId = new Map<string, NodeDef>();

  constructor(private readonly graphOutputs: ReadonlySet<string>) {}

  isGraphOutput(name: string): boolean {
    return this.graphOutputs.has(name);
  }

  /** A fresh IR id from a preferred name (a graph output's, a parameter's module path, a node name). */
  id(preferred: string): string {
    const base = sanitize(preferred);
    let id = base;
    for (let k = 1; this.taken.has(id); k++) id = `${base}_${k}`;
    this.taken.add(id);
    return id;
  }

  input(name: string, shape: (number | null)[], dtype: 'float32' | 'int32'): string {
    const id = this.id(name);
    this.inputs.push({ id, shape, dtype });
    return id;
  }

  add(id: string, op: string, inputs: string[], attrs: Record<string, unknown>, params: Record<string, ParamValue> = {}): string {
    const node: NodeDef = { id, op, inputs, attrs };
    this.nodes.push(node);
    this.byId.set(id, node);
    for (const [name, value] of Object.entries(params)) this.params.set(`${id}/${name}`, value);
    return id;
  }

  node(id: string): NodeDef | undefined {
    return this.byId.get(id);
  }

  param(id: string, name: string): ParamValue | undefined {
    return this.params.get(`${id}/${name}`);
  }

  setParam(id: string, name: string, value: ParamValue): void {
    this.params.set(`${id}/${name}`, value);
  }
}
