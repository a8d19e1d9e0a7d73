import { tf } from '../tf';
import type { Model } from '../model';

/**
 * Magnitude pruning through `setMask`, for tests of edits on masked models: masks the smallest
 * `fraction` of each listed parameter's weights (one edit, technique `'prune'`).
 */
export function maskSmallest(model: Model, keys: readonly string[], fraction = 0.5): void {
  model.edit(
    (tx) => {
      for (const key of keys) {
        const value = tx.param(key).value;
        const sorted = Float32Array.from(value.dataSync()).map(Math.abs).sort();
        const threshold = sorted[Math.floor(fraction * sorted.length)];
        const mask = tf.tidy(() => tf.cast(tf.greaterEqual(tf.abs(value), threshold), 'float32'));
        tx.setMask(key, mask);
        mask.dispose();
      }
    },
    { technique: 'prune', reason: 'test' },
  );
}

/** Tensors alive that the model does not hold (values, masks, optimizer slots). */
export function foreignTensors(model: Model): number {
  let held = 0;
  for (const key of model.paramKeys()) {
    held += model.param(key).mask ? 2 : 1;
    held += model.internalState.slots.get(key)?.size ?? 0;
  }
  return tf.memory().numTensors - held;
}

/** Positions where the mask is 0, per masked parameter. */
export function maskedZeros(model: Model): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const key of model.paramKeys()) {
    const mask = model.param(key).mask?.dataSync();
    if (!mask) continue;
    const zeros: number[] = [];
    mask.forEach((m, i) => m === 0 && zeros.push(i));
    out.set(key, zeros);
  }
  return out;
}

export interface MaskProblemsOptions {
  /** Parameters that must have a mask. */
  masked?: readonly string[];
  /**
   * Check that `counts().nonzeroParams` is the number of non-zero weights (default true). Off
   * when fresh units may start at exactly 0 while live.
   */
  liveNonzero?: boolean;
}

/**
 * The invariants of a masked model, as a list of problems (empty when it holds): `masked` keys
 * have a mask, the value is 0 wherever the mask is 0, and `counts().nonzeroParams` is the number
 * of non-zero weights (a parameter without a mask counts whole, as `count` defines it; a masked
 * one counts its non-zero values).
 *
 * @example
 * expect(maskProblems(model, { masked: ['fc1/kernel'] }), 'after widen').toEqual([]);
 */
export function maskProblems(model: Model, options: MaskProblemsOptions = {}): string[] {
  const problems: string[] = [];
  let actual = 0;
  for (const key of model.paramKeys()) {
    const entry = model.param(key);
    if (options.masked?.includes(key) && !entry.mask) problems.push(`${key} has no mask`);
    if (entry.role === 'state') continue;
    if (!entry.mask) {
      actual += entry.value.size;
      continue;
    }
    const value = entry.value.dataSync();
    const mask = entry.mask.dataSync();
    let leaked = 0;
    mask.forEach((m, i) => {
      if (m === 0 && value[i] !== 0) leaked += 1;
      if (value[i] !== 0) actual += 1;
    });
    if (leaked > 0) problems.push(`${key} has ${leaked} non-zero value(s) where its mask is 0`);
  }
  const reported = model.counts().nonzeroParams;
  if (options.liveNonzero !== false && reported !== actual) problems.push(`counts().nonzeroParams is ${reported}, the actual non-zero weights ${actual}`);
  return problems;
}

/**
 * Pruned positions (from {@link maskedZeros}, taken before training) that are no longer exactly
 * 0, as a list of problems (empty when none regrew).
 */
export function regrownProblems(model: Model, zeros: ReadonlyMap<string, readonly number[]>): string[] {
  const problems: string[] = [];
  for (const [key, list] of zeros) {
    const value = model.param(key).value.dataSync();
    const regrown = list.filter((i) => value[i] !== 0).length;
    if (regrown > 0) problems.push(`${key} regrew ${regrown} pruned weight(s)`);
  }
  return problems;
}
