/** A tensor shape; `null` marks a dimension only known at run time (the batch). */
export type Shape = (number | null)[];

export type DType = 'float32' | 'int32';

/** Shape and dtype of a value flowing through the graph. */
export interface TensorInfo {
  shape: Shape;
  dtype: DType;
}

/** A graph input. */
export interface GraphInput {
  id: string;
  shape: Shape;
  dtype: DType;
}

/** One node: `{ id, op, inputs, attrs }`. Ids are stable, readable names (`fc1`, `block2.ffn`). */
export interface NodeDef {
  id: string;
  op: string;
  inputs: string[];
  attrs: Record<string, unknown>;
}

/** The JSON graph IR. */
export interface GraphDef {
  inputs: GraphInput[];
  nodes: NodeDef[];
  outputs: string[];
  /**
   * JSON annotations that travel with the model through edits and save/load (e.g. the early-exit
   * policy of `@rs/dynamic`, keyed `dynamic.exitPolicy`). Executors ignore them. Set them with
   * `tx.setMeta(key, value)` so the change is journaled.
   */
  meta?: Record<string, unknown>;
}

/** What a parameter is for. `state` is non-trained running state (batchNorm statistics). */
export type ParamRole = 'weight' | 'bias' | 'arch' | 'state';

/** How a parameter (or a slice of one, for inserted units) is initialised. */
export type InitializerSpec =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'glorotUniform'; fanIn: number; fanOut: number }
  | { kind: 'heNormal'; fanIn: number }
  | { kind: 'heUniform'; fanIn: number }
  | { kind: 'normal'; mean?: number; std: number }
  | { kind: 'uniform'; min: number; max: number };

/** A parameter an op needs, as declared by the op's `params()`. */
export interface ParamSpec {
  shape: number[];
  init: InitializerSpec;
  role?: ParamRole;
  trainable?: boolean;
}

/** Parameter key: `nodeId/name`, e.g. `fc1/kernel`. */
export function paramKey(nodeId: string, name: string): string {
  return `${nodeId}/${name}`;
}

/** Splits `fc1/kernel` into `['fc1', 'kernel']` (node ids may themselves contain `/`). */
export function splitParamKey(key: string): [string, string] {
  const at = key.lastIndexOf('/');
  return [key.slice(0, at), key.slice(at + 1)];
}
