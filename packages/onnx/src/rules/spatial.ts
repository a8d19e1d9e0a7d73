/** Shared by the NHWC windowed rules (conv2d, maxPool2d, avgPool2d). */

export type Pair = number | [number, number];
export type Padding = 'same' | 'valid';

export function pairOf(value: Pair | undefined, fallback: [number, number]): [number, number] {
  if (value === undefined) return fallback;
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

/**
 * ONNX `pads` ([top, left, bottom, right]) reproducing TensorFlow's 'same' padding: output
 * `ceil(size / stride)`, total padding `max((out - 1) * stride + window - size, 0)`, the
 * smaller half before.
 */
export function samePads(size: [number, number], window: [number, number], strides: [number, number]): number[] {
  const before: number[] = [];
  const after: number[] = [];
  for (let a = 0; a < 2; a++) {
    const out = Math.ceil(size[a] / strides[a]);
    const total = Math.max((out - 1) * strides[a] + window[a] - size[a], 0);
    before.push(Math.floor(total / 2));
    after.push(total - Math.floor(total / 2));
  }
  return [...before, ...after];
}
