import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import { twoSpirals } from './two-spirals.js';

// The reference formula of the CMU benchmark (Lang & Witbrock 1988), as in the brief.
function classicPoint(i: number): [number, number] {
  const angle = (i * Math.PI) / 16;
  const radius = (6.5 * (104 - i)) / 104;
  return [radius * Math.sin(angle), radius * Math.cos(angle)];
}

describe('twoSpirals', () => {
  const data = twoSpirals();

  it('has the 194 points of the classic set', () => {
    // 194 = 2 spirals x 97 points (i = 0..96), Fahlman & Lebiere 1990.
    expect(data.count).toBe(194);
    expect(data.x.length).toBe(388);
    expect(data.y.length).toBe(194);
    expect(data.shape).toEqual([2]);
  });

  it('starts at (0, 6.5) and ends at radius 0.5', () => {
    expect(Array.from(data.x.subarray(0, 4))).toEqual([0, 6.5, -0, -6.5]);
    expect(Array.from(data.y.subarray(0, 2))).toEqual([1, 0]);
    // Point 96: radius 6.5 * 8 / 104 = 0.5, angle 6 pi (three full turns), so (0, 0.5).
    expect(data.x[4 * 96]).toBeCloseTo(0, 6);
    expect(data.x[4 * 96 + 1]).toBeCloseTo(0.5, 6);
  });

  it('follows the formula for every point, class 1 first, class 0 its negation', () => {
    for (let i = 0; i < 97; i++) {
      const [px, py] = classicPoint(i);
      expect(data.x[4 * i]).toBe(Math.fround(px));
      expect(data.x[4 * i + 1]).toBe(Math.fround(py));
      expect(data.x[4 * i + 2]).toBe(-data.x[4 * i]);
      expect(data.x[4 * i + 3]).toBe(-data.x[4 * i + 1]);
      expect(data.y[2 * i]).toBe(1);
      expect(data.y[2 * i + 1]).toBe(0);
    }
  });

  it('is balanced and point-symmetric', () => {
    expect(data.y.reduce((a, b) => a + b, 0)).toBe(97);
    let sx = 0;
    let sy = 0;
    for (let k = 0; k < data.count; k++) {
      sx += data.x[2 * k];
      sy += data.x[2 * k + 1];
    }
    expect(sx).toBe(0);
    expect(sy).toBe(0);
  });

  it('scales coordinates and densifies the same curve', () => {
    const scaled = twoSpirals({ scale: 2 });
    for (let j = 0; j < data.x.length; j++) expect(scaled.x[j]).toBeCloseTo(2 * data.x[j], 5);
    // 193 points per spiral is the CMU generator's density 2: every second point is a classic one.
    const dense = twoSpirals({ pointsPerSpiral: 193 });
    expect(dense.count).toBe(386);
    for (let i = 0; i < 97; i++) {
      expect(dense.x[4 * 2 * i]).toBeCloseTo(data.x[4 * i], 5);
      expect(dense.x[4 * 2 * i + 1]).toBeCloseTo(data.x[4 * i + 1], 5);
    }
  });

  it('rejects bad options with INVALID_ARGUMENT', () => {
    for (const options of [{ pointsPerSpiral: -1 }, { pointsPerSpiral: 1 }, { pointsPerSpiral: 2.5 }, { scale: 0 }, { scale: Number.NaN }]) {
      let caught: unknown;
      try {
        twoSpirals(options);
      } catch (error) {
        caught = error;
      }
      expect(isDatasetError(caught, 'INVALID_ARGUMENT')).toBe(true);
    }
  });
});
