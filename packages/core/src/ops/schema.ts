import type { Tensor } from '../tf';
import type { ParamSpec, TensorInfo } from '../ir/types';
import type { Layout, UnitBuilder } from '../units/builder';

/** Passed to `infer`: who is being inferred, and a way to fail with a message naming the node. */
export interface InferContext {
  nodeId: string;
  /** Throws a SHAPE_MISMATCH RsError naming the node, its op and the input shapes. */
  fail(message: string): never;
  /** Throws an INVALID_ATTRS RsError naming the node and its op. */
  failAttrs(message: string): never;
}

/** Seeded random numbers for ops (dropout, noise). */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** A 31-bit integer seed, e.g. for tf.randomUniform. */
  seed(): number;
}

/** Passed to `forward`. */
export interface ForwardContext {
  nodeId: string;
  training: boolean;
  rng: Rng;
  /** Contribute an auxiliary loss (added to the training loss, reported under `name`). */
  addLoss(name: string, value: Tensor): void;
  /** Record a named metric (a scalar) for this step; reported, not trained on. */
  addMetric(name: string, value: Tensor): void;
  /**
   * Replace one of this node's `state` params (batchNorm running statistics) after a training
   * step. The executor keeps `value` (do not dispose it) and writes it back outside autodiff.
   */
  setState(param: string, value: Tensor): void;
}

/**
 * An op type: one object registered by name. This is the plugin API.
 *
 * @example
 * const square: OpSchema = {
 *   name: 'square', arity: 1,
 *   infer: (_a, [x]) => x,
 *   forward: ([x]) => tf.square(x),
 *   units: 'elementwise',
 * };
 * registry.register(square);
 */
export interface OpSchema<A extends object = Record<string, unknown>> {
  readonly name: string;
  /** Number of inputs: exact, or `[min, max]` (`max` may be Infinity). */
  readonly arity: number | readonly [number, number];
  /** Output shape and dtype; validate attrs and input shapes here, failing through `ctx`. */
  infer(attrs: A, inputs: TensorInfo[], ctx: InferContext): TensorInfo;
  /** Parameters this node owns, by name (keyed `nodeId/name` in the model). */
  params?(attrs: A, inputs: TensorInfo[]): Record<string, ParamSpec>;
  /** Computes the output. Params are already masked. Must not leak tensors (it runs inside tidy). */
  forward(inputs: Tensor[], params: Record<string, Tensor>, attrs: A, ctx: ForwardContext): Tensor;
  /**
   * Which axes are units and how they couple (see docs/concepts.md). `'elementwise'`: the
   * output's feature axis is coupled to every input's. `'opaque'`: units do not pass; the
   * inputs' groups are frozen. Omitted: same as `'opaque'`.
   */
  units?: 'elementwise' | 'opaque' | ((u: UnitBuilder<A>) => Layout | null);
  /** Floating-point operations for one sample (batch dimension = 1). Omitted: 0. */
  flops?(attrs: A, inputs: TensorInfo[], output: TensorInfo): number;
  /**
   * After a unit edit changed this node's parameter shapes, returns attrs that agree with them
   * (e.g. dense `units` = kernel columns). Omitted: attrs do not depend on unit counts.
   */
  syncAttrs?(attrs: A, paramShapes: Record<string, number[]>, inputs: TensorInfo[]): A;
}

/** Resolves the concrete batch size 1 for FLOP counting. */
export function concrete(shape: (number | null)[]): number[] {
  return shape.map((d) => (d === null ? 1 : d));
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
