/**
 * ONNX export rules for this plugin's ops, for `@rs/onnx`'s `registerOnnxRule`.
 *
 * This file does not import `@rs/onnx`: the rules are plain objects, typed here by the few
 * members of `OnnxEmitContext` that they use, so the plugin does not need `@rs/onnx` installed
 * (it is an optional peer). The types are structural: `registerOnnxRule` accepts them as they
 * are.
 *
 * @example
 * import { registerOnnxRule, toOnnx } from '@rs/onnx';
 * import { registerOnnx } from 'rs-plugin-template/onnx';
 * registerOnnx(registerOnnxRule);
 * const bytes = toOnnx(model);
 */

/** The part of `@rs/onnx`'s `OnnxEmitContext` these rules use. */
export interface EmitContext {
  /** ONNX value names of the node's inputs. */
  inputNames: string[];
  /** Shapes of the node's inputs as @rs/core infers them. */
  inputs: { shape: (number | null)[] }[];
  /** The node, with its attrs. */
  node: { attrs: Record<string, unknown> };
  /** The initializer holding this node's parameter `name` (masks applied). */
  param(name: string): string;
  /** A float32 scalar constant. */
  scalar(value: number): string;
  /** Appends one ONNX node and returns its output's name. */
  op(opType: string, inputs: readonly string[], attrs?: Record<string, number | string | number[] | undefined>): string;
  /** ReduceMean over `axes`, written for the target opset. */
  reduce(opType: 'ReduceSum' | 'ReduceMean' | 'ReduceMax', input: string, axes: readonly number[], keepdims: boolean): string;
}

/** An export rule: the op kind and how to emit it (`@rs/onnx`'s `OnnxRule`). */
export interface OnnxRuleLike {
  readonly op: string;
  emit(ctx: EmitContext): string;
}

/** `prelu` is ONNX `PRelu`; the slope `[C]` broadcasts over the last axis. */
export const preluRule: OnnxRuleLike = {
  op: 'prelu',
  emit: (ctx) => ctx.op('PRelu', [ctx.inputNames[0], ctx.param('alpha')]),
};

/** `rmsNorm` composed from standard operators (RMSNormalization exists only from opset 23). */
export const rmsNormRule: OnnxRuleLike = {
  op: 'rmsNorm',
  emit(ctx) {
    const [x] = ctx.inputNames;
    const last = ctx.inputs[0].shape.length - 1;
    const epsilon = typeof ctx.node.attrs.epsilon === 'number' ? ctx.node.attrs.epsilon : 1e-6;
    const meanSquare = ctx.reduce('ReduceMean', ctx.op('Mul', [x, x]), [last], true);
    const rms = ctx.op('Sqrt', [ctx.op('Add', [meanSquare, ctx.scalar(epsilon)])]);
    return ctx.op('Mul', [ctx.op('Div', [x, rms]), ctx.param('gain')]);
  },
};

/** Every export rule of this plugin. */
export const onnxRules: readonly OnnxRuleLike[] = [preluRule, rmsNormRule];

/**
 * Registers the rules with `@rs/onnx`: pass its `registerOnnxRule` (the default table) or a
 * table's `register` (`(rule) => rules.register(rule)`).
 */
export function registerOnnx(registerRule: (rule: OnnxRuleLike) => unknown): void {
  for (const rule of onnxRules) registerRule(rule);
}
