import { formatShape } from '../errors';
import type { TensorInfo } from '../ir/types';
import type { InferContext } from './schema';
import { checkFloat, isPositiveInt, show } from './attrs';

/** Shared by the NHWC windowed ops (conv2d, maxPool2d, avgPool2d). */

export type Pair = number | [number, number];
export type Padding = 'same' | 'valid';

/** `3` -> `[3, 3]`; assumes the value was validated by `checkPair`. */
export function pair(value: Pair | undefined, fallback: [number, number]): [number, number] {
  if (value === undefined) return fallback;
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

export function checkPair(ctx: InferContext, name: string, value: unknown, fallback?: [number, number]): [number, number] {
  if (value === undefined && fallback) return fallback;
  if (isPositiveInt(value)) return [value, value];
  if (Array.isArray(value) && value.length === 2 && isPositiveInt(value[0]) && isPositiveInt(value[1])) return [value[0], value[1]];
  return ctx.failAttrs(`${name} must be a positive integer or a pair [height, width] of them, got ${show(value)}`);
}

export function checkPadding(ctx: InferContext, value: unknown): Padding {
  if (value === undefined) return 'valid';
  if (value !== 'same' && value !== 'valid') ctx.failAttrs(`padding must be 'same' or 'valid', got ${show(value)}`);
  return value;
}

/** TensorFlow's rule: 'valid' = floor((size - window) / stride) + 1, 'same' = ceil(size / stride). */
export function windowOutputSize(size: number, window: number, stride: number, padding: Padding): number {
  return padding === 'same' ? Math.ceil(size / stride) : Math.floor((size - window) / stride) + 1;
}

/** Validates an NHWC input and returns its known `[H, W, C]` and the output `[Ho, Wo]`. */
export function inferWindow(
  ctx: InferContext,
  x: TensorInfo,
  window: [number, number],
  strides: [number, number],
  padding: Padding,
  windowName: string,
): { h: number; w: number; c: number; ho: number; wo: number } {
  checkFloat(ctx, x);
  if (x.shape.length !== 4) ctx.fail(`expects an NHWC input of rank 4, got ${formatShape(x.shape)}`);
  const [, h, w, c] = x.shape;
  if (h === null || w === null || c === null) ctx.fail(`needs known height, width and channels, got ${formatShape(x.shape)}`);
  const ho = windowOutputSize(h, window[0], strides[0], padding);
  const wo = windowOutputSize(w, window[1], strides[1], padding);
  if (ho < 1 || wo < 1) {
    ctx.fail(`${windowName} ${window[0]}x${window[1]} does not fit the input ${formatShape(x.shape)} with 'valid' padding`);
  }
  return { h, w, c, ho, wo };
}
