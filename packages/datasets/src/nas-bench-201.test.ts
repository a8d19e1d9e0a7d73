import { describe, expect, it } from 'vitest';
import { loadNasBench201 } from './index.js';

describe('loadNasBench201', () => {
  it('reads the 15,625 cells with the facts the data README lists', () => {
    const { rows } = loadNasBench201();
    expect(rows).toHaveLength(15625);
    expect(new Set(rows.map((r) => r.arch)).size).toBe(15625);
    const bestValid = rows.reduce((a, b) => (b.validAccuracy > a.validAccuracy ? b : a));
    expect(bestValid.validAccuracy).toBeCloseTo(91.61, 1);
    expect(Math.max(...rows.map((r) => r.testAccuracy))).toBeCloseTo(94.37, 1);
    const allSkip = rows.find((r) => r.arch === '|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|');
    expect(allSkip?.testAccuracy).toBeCloseTo(54.3, 1);
  });
});
