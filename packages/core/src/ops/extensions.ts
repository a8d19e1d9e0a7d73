import type { NodeDef, TensorInfo } from '../ir/types';
import type { Tensor } from '../tf';
import type { Model } from '../model';
import type { UnitGroup } from '../units/analyze';
import type { LossFn, LossName } from '../train/losses';

/*
 * Extension points: what a technique package declares, next to its ops, for the layers built on
 * top of @rs/core (ONNX export, reports, telemetry). Everything here is a structural type over
 * core types only, so a technique depends on @rs/core alone and the consuming package
 * (@rs/onnx, @rs/report, @rs/prune for scores) depends on no other technique. A technique provides values with
 * `registry.provide(point, key, value)` inside its `register(registry)`; consumers read them with
 * `registry.provided(point)`.
 */

// ---------------------------------------------------------------------------------------------
// 'onnx': how an op kind becomes ONNX (a lowering over a small builder interface).

/** Element types of constants a lowering can add. */
export type OnnxDType = 'float32' | 'int32' | 'int64' | 'bool' | 'float64';

/** A tensor-valued ONNX attribute (e.g. `ConstantOfShape`'s `value`); `dataType` is ONNX's code (1 float, 6 int32, 7 int64). */
export interface OnnxTensorValue {
  dims: number[];
  dataType: number;
  floatData?: number[];
  int32Data?: number[];
}

/** An ONNX node attribute: int (integer number), float, string, ints, floats or a tensor. */
export type OnnxAttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: OnnxTensorValue };

/**
 * What a lowering may look at to decide whether a node can be exported exactly (nothing is built yet).
 *
 * @example
 * check: (info) => (info.inputs[0].shape.length === 2 ? undefined : 'only rank-2 inputs have an exporter'),
 */
export interface OnnxCheckInfo<A extends object = Record<string, unknown>> {
  /** The node (`attrs` typed by the rule). */
  node: NodeDef & { attrs: A };
  /** Shapes and dtypes of the node's inputs as @rs/core infers them (NHWC, `null` batch). */
  inputs: TensorInfo[];
  /** Shape and dtype of the node's output. */
  output: TensorInfo;
  /** Shapes of this node's parameters by name (`kernel`, `bias`). */
  params: Record<string, number[]>;
  /** Values of one of this node's parameters, masks applied (a copy; read on demand). */
  paramValues(name: string): Float32Array | Int32Array;
  /** Target opset of the export. */
  opset: number;
  /** Batch dimension of the export: `'dynamic'` or a fixed size. */
  batch: 'dynamic' | number;
}

/** Options of {@link OnnxEmitContext.ops}. */
export interface OnnxOpOptions {
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Operator domain (default: the standard `ai.onnx` domain). */
  domain?: string;
}

/**
 * The builder a lowering appends ONNX nodes with: the node's ONNX inputs, constants, and ops.
 *
 * @example
 * emit: (ctx) => ctx.op('Mul', [ctx.inputNames[0], ctx.param('alpha')]),
 */
export interface OnnxEmitContext<A extends object = Record<string, unknown>> extends OnnxCheckInfo<A> {
  /** ONNX value names of the node's inputs, in @rs/core layout (NHWC for images). */
  inputNames: string[];
  /** The initializer holding this node's parameter `name` with masks applied (added on first use). */
  param(name: string): string;
  /** Adds an initializer (a constant) and returns its name. `values` are row-major. */
  constant(values: ArrayLike<number> | ArrayLike<bigint>, shape: readonly number[], dtype?: OnnxDType): string;
  /** A 1-D int64 constant (shapes, axes, starts/ends of Slice...). */
  int64s(values: readonly number[]): string;
  /** A float32 scalar constant (shape []). */
  scalar(value: number, dtype?: OnnxDType): string;
  /** Appends one ONNX node and returns its output name(s). */
  op(opType: string, inputs: readonly string[], attrs?: Record<string, OnnxAttrValue | undefined>): string;
  ops(opType: string, inputs: readonly string[], attrs: Record<string, OnnxAttrValue | undefined>, options: OnnxOpOptions & { outputs: number }): string[];
  /** The NCHW form of an NHWC rank-4 value (one Transpose, shared by every consumer). */
  toNchw(nhwc: string): string;
  /** The NHWC form of an NCHW rank-4 value; remembers the pair so `toNchw` of the result costs nothing. */
  fromNchw(nchw: string): string;
  /** ReduceSum/ReduceMean/ReduceMax over `axes`, written for the target opset (axes became an input in 18). */
  reduce(opType: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', input: string, axes: readonly number[], keepdims: boolean): string;
  /** Throws the UNSUPPORTED_EXPORT error for this node with `reason`. */
  fail(reason: string): never;
}

/**
 * How one op kind becomes ONNX (the value of extension point `'onnx'`, keyed by op name).
 * `check` says (before anything is built) why a node cannot be exported exactly; `emit` appends
 * the ONNX nodes and returns the name of the value holding the node's output, in @rs/core's layout.
 *
 * @example
 * registry.provide('onnx', 'square', { op: 'square', emit: (ctx) => ctx.op('Mul', [ctx.inputNames[0], ctx.inputNames[0]]) });
 */
export interface OnnxRule<A extends object = any> {
  /** The op kind (`OpSchema.name`) this rule exports. */
  readonly op: string;
  /** Why `info.node` cannot be exported exactly, or `undefined` when it can. */
  check?(info: OnnxCheckInfo<A>): string | undefined;
  /** Appends the ONNX nodes computing the node's output; returns the output's value name. */
  emit(ctx: OnnxEmitContext<A>): string;
}

// ---------------------------------------------------------------------------------------------
// 'report': a section of a model report that a technique knows how to measure.

/** Held-out data a report measures on. */
export interface ReportSectionData {
  /** Inputs, `[rows, ...features]`. */
  x: Tensor;
  /** Class labels, one per row (optional). */
  y?: ArrayLike<number>;
}

/** One `moe` layer's measured routing over a report's data (the `expertLoad` report section). */
export interface ExpertLoadLayer {
  /** Node id of the `moe` layer. */
  node: string;
  experts: number;
  /** Tokens routed through the layer. */
  tokens: number;
  /** Fraction of tokens whose first choice is each expert (sums to 1). */
  load: number[];
  /** Busiest expert's load over the mean load, max(load) * experts: 1 when balanced, `experts` when one expert takes everything. */
  imbalance: number;
  /** Fraction of requested assignments dropped by the capacity limit at evaluation. */
  dropped: number;
}

/** The `expertLoad` report section: `layers`, and a `reason` when there is nothing (or not everything) to show. */
export interface ExpertLoadSection {
  layers: ExpertLoadLayer[];
  reason?: string;
}

/** What a report section gets: the model, held-out data, and the caller's options. */
export interface ReportSectionContext {
  model: Model;
  /** Held-out data, or `undefined` when none was given. */
  data?: ReportSectionData;
  /** Rows per forward pass. */
  batchSize: number;
  /** The report's options as the caller gave them (a section reads its own keys, e.g. `exitPolicy`). */
  options: Readonly<Record<string, unknown>>;
  /** Name of the calling function, for error messages (e.g. `'collectReport'`). */
  caller: string;
  /** Runs `body` on `data.x` in batches of `batchSize` rows (slices are disposed afterwards). */
  forBatches(x: Tensor, body: (batch: Tensor, start: number) => void): void;
}

/**
 * A report section (the value of extension point `'report'`, keyed by section name). `collect`
 * returns plain JSON (the section's data) and leaves no tensor behind; it returns a value with a
 * `reason` when there is nothing to measure.
 *
 * @example
 * registry.provide('report', 'expertLoad', { section: 'expertLoad', title: 'Expert load', collect: (ctx) => ({ layers: [] }) });
 */
export interface ReportSection<T = unknown> {
  /** Key of the section in the report data (e.g. `expertLoad`, `exits`). */
  readonly section: string;
  /** Human title. */
  readonly title?: string;
  collect(ctx: ReportSectionContext): T;
}

// ---------------------------------------------------------------------------------------------
// 'telemetry': how to read an op's per-run metrics as named numbers.

/** The metrics of one run (`RunResult.metrics`: `node/name` -> scalar tensor). */
export type RunMetrics = ReadonlyMap<string, Tensor>;

/**
 * Reads the run metrics of one node of op `op` (the value of extension point `'telemetry'`, keyed
 * by op name) into plain numbers, or `undefined` when the run reported none for that node.
 *
 * @example
 * registry.provide('telemetry', 'moe', { op: 'moe', read: (metrics, node) => ({ dropped: metrics.get(`${node.id}/dropped`)?.dataSync()[0] ?? 0 }) });
 */
export interface TelemetryReader<T extends Record<string, number | number[]> = Record<string, number | number[]>> {
  readonly op: string;
  read(metrics: RunMetrics, node: NodeDef): T | undefined;
}

// ---------------------------------------------------------------------------------------------
// 'score': an importance score that pruning can rank weights and units by.

/** A batch of data for data-driven scores (Taylor, SNIP). */
export interface ScoreBatch {
  x: Tensor | Tensor[];
  y: Tensor;
}

/** What a score needs besides the model. */
export interface ScoreContext {
  /** Batches for gradient-based scores. Taylor accumulates over all; SNIP uses the first. */
  batches?: ScoreBatch[];
  loss?: LossName | LossFn;
  /** Seed for `random`. */
  seed?: number;
}

/**
 * An importance score (the value of extension point `'score'`, keyed by score name): a
 * non-negative value per weight of each requested parameter (same shape). Higher means more
 * important. @rs/prune resolves `score: 'name'` in its own score registry first, then here, so a
 * technique offers a score to pruning without depending on @rs/prune.
 *
 * @example
 * registry.provide('score', 'absScale', { name: 'absScale', needsData: false, weights: (model, params) => new Map(params.map((k) => [k, tf.abs(model.param(k).value)])) });
 */
export interface ImportanceScore {
  readonly name: string;
  /** Whether the score needs `context.batches`. */
  readonly needsData: boolean;
  /**
   * When true, `weights` returns signed per-weight contributions: a weight's importance is the
   * absolute value of its contribution, a unit's is the absolute value of the sum over the
   * unit's coupled weights (so contributions of opposite sign cancel, as in a first-order
   * estimate of removing the whole unit).
   */
  readonly signed?: boolean;
  /** Per-weight scores for `params` (keys `node/name`); the caller disposes the tensors. */
  weights(model: Model, params: string[], context: ScoreContext): Map<string, Tensor>;
  /**
   * Optional: per-unit scores of whole unit groups (group id -> one value per unit), for scores
   * that are not a sum of per-weight values (e.g. an expectation of absolute values over
   * batches). When present, unit scoring (`groupUnitScores`, so `pruneUnits`) uses it instead of
   * summing `weights`.
   */
  units?(model: Model, groups: UnitGroup[], context: ScoreContext): Map<string, Float64Array>;
}

/** The typed extension points. Other points may be used with any value type. */
export interface ExtensionPoints {
  onnx: OnnxRule;
  report: ReportSection;
  telemetry: TelemetryReader;
  score: ImportanceScore;
}
