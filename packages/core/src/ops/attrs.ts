import { formatShape } from '../errors';
import type { Shape, TensorInfo } from '../ir/types';
import type { InferContext } from './schema';

/** Shared attr and shape checks of the built-in ops. Every failure goes through `ctx`. */

/** Renders an attr value for messages (`[3,3]`, `'same'`, `undefined`). */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `'${value}'`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

export function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

export function checkPositiveInt(ctx: InferContext, name: string, value: unknown): number {
  if (!isPositiveInt(value)) ctx.failAttrs(`${name} must be a positive integer, got ${show(value)}`);
  return value;
}

export function checkOptionalBoolean(ctx: InferContext, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') ctx.failAttrs(`${name} must be a boolean when given, got ${show(value)}`);
}

/** A finite number in `[min, max]` (or `[min, max)` when `maxExclusive`), or `fallback` when absent. */
export function checkNumber(
  ctx: InferContext,
  name: string,
  value: unknown,
  fallback: number,
  range: { min: number; max: number; minExclusive?: boolean; maxExclusive?: boolean },
): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (range.minExclusive ? value > range.min : value >= range.min) &&
    (range.maxExclusive ? value < range.max : value <= range.max);
  if (!ok) {
    const low = range.minExclusive ? '(' : '[';
    const high = range.maxExclusive ? ')' : ']';
    ctx.failAttrs(`${name} must be a number in ${low}${range.min}, ${range.max}${high}, got ${show(value)}`);
  }
  return value as number;
}

export function checkFloat(ctx: InferContext, x: TensorInfo): void {
  if (x.dtype !== 'float32') ctx.fail(`expects float32 input, got ${x.dtype} ${formatShape(x.shape)}`);
}

/** Requires every dimension after the batch to be a known number and returns them. */
export function knownFeatureDims(ctx: InferContext, shape: Shape): number[] {
  const rest = shape.slice(1);
  if (rest.some((d) => d === null)) ctx.fail(`needs every dimension after the batch to be known, got ${formatShape(shape)}`);
  return rest as number[];
}

/** Normalises an `axis` attr (default -1) against `rank`; the batch axis 0 is refused. */
export function resolveAxis(ctx: InferContext, value: unknown, shape: Shape): number {
  const rank = shape.length;
  const axis = value === undefined ? -1 : value;
  if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < -rank || axis >= rank) {
    ctx.failAttrs(`axis must be an integer in [${-rank}, ${rank - 1}] for an input of shape ${formatShape(shape)}, got ${show(value)}`);
  }
  const resolved = axis < 0 ? axis + rank : axis;
  if (resolved === 0) ctx.failAttrs(`axis ${axis} is the batch axis of ${formatShape(shape)}; use a non-batch axis`);
  return resolved;
}

/** Same normalisation as `resolveAxis`, without validation (for `forward`, after `infer` passed). */
export function axisOf(value: number | undefined, rank: number): number {
  const axis = value ?? -1;
  return axis < 0 ? axis + rank : axis;
}

export function product(values: readonly number[]): number {
  let n = 1;
  for (const v of values) n *= v;
  return n;
}
