import { DatasetError, checkInteger } from './errors.js';

/** Options of {@link twoSpirals}. */
export interface TwoSpiralsOptions {
  /**
   * Points per spiral; 97 by default (the classic 194-point set). Other values sample the same
   * three-turn curves more or less densely, following the CMU generator's `density` knob:
   * density = (pointsPerSpiral - 1) / 96.
   */
  pointsPerSpiral?: number;
  /** Multiplies every coordinate; 1 by default (the classic radius 6.5). */
  scale?: number;
}

/** The result of {@link twoSpirals}. */
export interface TwoSpirals {
  /** `count * 2` coordinates, (x, y) per point. */
  x: Float32Array;
  /** `count` labels: 1 for the first spiral, 0 for its point reflection. */
  y: Int32Array;
  count: number;
  /** Shape of one sample: [2]. */
  shape: [number];
}

/**
 * The CMU two-spirals benchmark (Lang & Witbrock 1988; the 194-point set of Fahlman & Lebiere
 * 1990). For i = 0..96: angle = i * pi / 16, radius = 6.5 * (104 - i) / 104,
 * (radius * sin(angle), radius * cos(angle)) is class 1 and its negation is class 0.
 * Points are interleaved: sample 2i is class 1, sample 2i + 1 is its class-0 mirror.
 *
 * @example
 * const { x, y, count } = twoSpirals(); // count = 194
 * // x[0], x[1] = (0, 6.5) with y[0] = 1; x[2], x[3] = (-0, -6.5) with y[1] = 0
 */
export function twoSpirals(options: TwoSpiralsOptions = {}): TwoSpirals {
  const n = checkInteger('twoSpirals options.pointsPerSpiral', options.pointsPerSpiral ?? 97, 2);
  const scale = options.scale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
    throw new DatasetError(
      'INVALID_ARGUMENT',
      `twoSpirals options.scale must be a finite number > 0, got ${String(scale)}.`,
      { name: 'scale', value: scale },
    );
  }
  // density = 1 for the classic set, so the arithmetic below is then exactly the formula above.
  const density = (n - 1) / 96;
  const count = 2 * n;
  const x = new Float32Array(count * 2);
  const y = new Int32Array(count);
  for (let i = 0; i < n; i++) {
    const angle = (i * Math.PI) / (16 * density);
    const radius = (6.5 * (104 * density - i)) / (104 * density);
    const px = radius * Math.sin(angle) * scale;
    const py = radius * Math.cos(angle) * scale;
    x[4 * i] = px;
    x[4 * i + 1] = py;
    y[2 * i] = 1;
    x[4 * i + 2] = -px;
    x[4 * i + 3] = -py;
    y[2 * i + 1] = 0;
  }
  return { x, y, count, shape: [2] };
}
