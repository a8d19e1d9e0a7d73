import { RsError, type NodeDef, type TensorInfo } from '@rs/core';
import type { AttrValue, OnnxDType } from './proto';

/**
 * What a rule may look at to decide whether a node can be exported exactly (nothing is built yet).
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

/**
 * Options of {@link OnnxEmitContext.ops}.
 *
 * @example
 * const [values, indices] = ctx.ops('TopK', [x, ctx.int64s([2])], { axis: -1 }, { outputs: 2 });
 */
export interface OnnxOpOptions {
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Operator domain (default: the standard `ai.onnx` domain). */
  domain?: string;
}

/**
 * Passed to {@link OnnxRule.emit}: the node's ONNX inputs and a way to append ONNX nodes.
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
  op(opType: string, inputs: readonly string[], attrs?: Record<string, AttrValue | undefined>): string;
  ops(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue | undefined>, options: OnnxOpOptions & { outputs: number }): string[];
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
 * How one op kind becomes ONNX. `check` says (before anything is built) why a node cannot be
 * exported exactly; `emit` appends the ONNX nodes and returns the name of the value holding the
 * node's output, in @rs/core's layout.
 *
 * @example
 * const square: OnnxRule = { op: 'square', emit: (ctx) => ctx.op('Mul', [ctx.inputNames[0], ctx.inputNames[0]]) };
 * registerOnnxRule(square);
 */
export interface OnnxRule<A extends object = any> {
  /** The op kind (`OpSchema.name`) this rule exports. */
  readonly op: string;
  /** Why `info.node` cannot be exported exactly, or `undefined` when it can. */
  check?(info: OnnxCheckInfo<A>): string | undefined;
  /** Appends the ONNX nodes computing the node's output; returns the output's value name. */
  emit(ctx: OnnxEmitContext<A>): string;
}

/**
 * Export rules by op kind. A duplicate registration is an error unless `{ override: true }` is
 * passed (the convention of core's `OpRegistry`).
 *
 * @example
 * const rules = createOnnxRules();           // the built-in rules
 * rules.register(myRule);                   // only this table sees it
 * const bytes = toOnnx(model, { rules });
 */
export class OnnxRuleRegistry {
  private readonly rules = new Map<string, OnnxRule>();

  /** Adds `rule` under `rule.op`; throws DUPLICATE_OP when one exists and `override` is not set. */
  register(rule: OnnxRule, options: { override?: boolean } = {}): this {
    if (!rule || typeof rule.op !== 'string' || rule.op.length === 0 || typeof rule.emit !== 'function') {
      throw new RsError('INVALID_ARGUMENT', 'An ONNX rule needs a non-empty string `op` and an `emit` function.');
    }
    if (rule.check !== undefined && typeof rule.check !== 'function') {
      throw new RsError('INVALID_ARGUMENT', `The ONNX rule for '${rule.op}' has a \`check\` that is not a function.`);
    }
    if (this.rules.has(rule.op) && !options.override) {
      throw new RsError('DUPLICATE_OP', `An ONNX rule for op '${rule.op}' is already registered; pass { override: true } to replace it.`, { op: rule.op });
    }
    this.rules.set(rule.op, rule);
    return this;
  }

  has(op: string): boolean {
    return this.rules.has(op);
  }

  /** The rule for `op`, or `undefined`. */
  get(op: string): OnnxRule | undefined {
    return this.rules.get(op);
  }

  /** Op kinds with a rule, sorted. */
  ops(): string[] {
    return [...this.rules.keys()].sort();
  }

  /** A copy that can be extended without touching this table. */
  clone(): OnnxRuleRegistry {
    const copy = new OnnxRuleRegistry();
    for (const rule of this.rules.values()) copy.register(rule);
    return copy;
  }
}
