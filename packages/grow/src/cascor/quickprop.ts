// The quickprop update rule (Fahlman 1988) and the paper's symmetric sigmoid; see cascor.ts.

/** Symmetric sigmoid in (-0.5, 0.5). */
export const sig = (s: number): number => 1 / (1 + Math.exp(-s)) - 0.5;

/**
 * One quickprop update of `n` weights starting at `offset` (see the module comment). Slopes are
 * dE/dw of the quantity being minimised; they are moved to `prev` and cleared.
 */
export function quickprop(
  w: Float64Array,
  delta: Float64Array,
  slope: Float64Array,
  prev: Float64Array,
  offset: number,
  n: number,
  eps: number,
  mu: number,
  decay: number,
): void {
  const shrink = mu / (1 + mu);
  for (let i = offset; i < offset + n; i++) {
    const s = slope[i] + decay * w[i];
    const d = delta[i];
    const p = prev[i];
    let step = 0;
    if (d < 0) {
      if (s > 0) step -= eps * s;
      if (s >= shrink * p) step += mu * d;
      else step += (d * s) / (p - s);
    } else if (d > 0) {
      if (s < 0) step -= eps * s;
      if (s <= shrink * p) step += mu * d;
      else step += (d * s) / (p - s);
    } else {
      step -= eps * s;
    }
    delta[i] = step;
    w[i] += step;
    prev[i] = s;
    slope[i] = 0;
  }
}
