// Turns a drawing into an MNIST-like digit, the way MNIST itself was made (LeCun et al.): the
// digit's bounding box is scaled (aspect ratio kept, area-averaged, so anti-aliased) to fit a
// 20x20 box, then placed in a 28x28 field with its centre of mass at the field's centre.
// @rs/datasets stores MNIST as 784 floats per digit in [0, 1], row-major, ink = 1 on a 0
// background; measured on its 2,000 test digits: the centre of mass averages (13.98, 13.99) in
// pixel-index coordinates, the ink's bounding box is 20 pixels tall for 90% of them, and the
// brightest pixel is 1 (median).

/** Side of an MNIST digit. */
export const MNIST_SIDE = 28;
/** The box the digit's longer side is scaled to. */
export const DIGIT_BOX = 20;
/** Where MNIST puts the centre of mass (pixel-index coordinates, both axes). */
export const MNIST_CENTRE = 14;
/** Ink below this (0..1) does not count for the bounding box (stray anti-aliasing). */
const INK_THRESHOLD = 0.1;

/**
 * Ink (0..1) of each pixel of RGBA image data drawn as light strokes on a dark background:
 * the mean of the colour channels.
 *
 * @example
 * const ink = inkFromRgba(ctx.getImageData(0, 0, 280, 280).data);
 */
export function inkFromRgba(rgba: Uint8ClampedArray | Uint8Array): Float32Array {
  const ink = new Float32Array(rgba.length / 4);
  for (let i = 0; i < ink.length; i++) ink[i] = (rgba[4 * i] + rgba[4 * i + 1] + rgba[4 * i + 2]) / (3 * 255);
  return ink;
}

/** For each target cell along one axis: the source indices it covers and their weights (sum 1). */
function axisWeights(start: number, length: number, cells: number): { index: number; weight: number }[][] {
  const step = length / cells;
  const out: { index: number; weight: number }[][] = [];
  for (let c = 0; c < cells; c++) {
    const from = start + c * step;
    const to = from + step;
    const taps: { index: number; weight: number }[] = [];
    for (let s = Math.floor(from); s < Math.ceil(to); s++) {
      const overlap = Math.min(to, s + 1) - Math.max(from, s);
      if (overlap > 1e-9) taps.push({ index: s, weight: overlap / step });
    }
    out.push(taps);
  }
  return out;
}

/**
 * Converts a `width` x `height` ink image (0..1, row-major) into a 784-float MNIST digit, or
 * returns null if nothing is drawn.
 *
 * @example
 * const digit = toMnist(inkFromRgba(imageData.data), 280, 280); // Float32Array(784) or null
 */
export function toMnist(ink: Float32Array, width: number, height: number): Float32Array | null {
  if (ink.length !== width * height) throw new Error(`toMnist: ${ink.length} pixels for a ${width}x${height} image.`);
  let top = height;
  let bottom = -1;
  let left = width;
  let right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] <= INK_THRESHOLD) continue;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
      if (x < left) left = x;
      if (x > right) right = x;
    }
  }
  if (bottom < 0) return null;
  const boxWidth = right - left + 1;
  const boxHeight = bottom - top + 1;
  const scale = DIGIT_BOX / Math.max(boxWidth, boxHeight);
  const cols = Math.max(1, Math.round(boxWidth * scale));
  const rows = Math.max(1, Math.round(boxHeight * scale));
  // Area-average resampling, separable: along x for every source row, then along y.
  const xTaps = axisWeights(left, boxWidth, cols);
  const yTaps = axisWeights(top, boxHeight, rows);
  const alongX = new Float32Array(boxHeight * cols);
  for (let y = 0; y < boxHeight; y++) {
    const row = (top + y) * width;
    for (let c = 0; c < cols; c++) {
      let sum = 0;
      for (const { index, weight } of xTaps[c]) sum += weight * ink[row + index];
      alongX[y * cols + c] = sum;
    }
  }
  const small = new Float32Array(rows * cols);
  let max = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let sum = 0;
      for (const { index, weight } of yTaps[r]) sum += weight * alongX[(index - top) * cols + c];
      small[r * cols + c] = sum;
      if (sum > max) max = sum;
    }
  }
  // MNIST strokes reach full intensity; a thin or faint drawing is brought up to it.
  let mass = 0;
  let massX = 0;
  let massY = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = small[r * cols + c] / max;
      small[r * cols + c] = v;
      mass += v;
      massX += v * c;
      massY += v * r;
    }
  }
  const clamp = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  const offsetX = clamp(Math.round(MNIST_CENTRE - massX / mass), MNIST_SIDE - cols);
  const offsetY = clamp(Math.round(MNIST_CENTRE - massY / mass), MNIST_SIDE - rows);
  const digit = new Float32Array(MNIST_SIDE * MNIST_SIDE);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) digit[(r + offsetY) * MNIST_SIDE + c + offsetX] = Math.min(1, small[r * cols + c]);
  }
  return digit;
}
