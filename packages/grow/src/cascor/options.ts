import { RsError } from '@rs/core';
import type { CascorData, CascorOptions } from './types';

export const DEFAULTS = {
  seed: 0,
  candidates: 8,
  maxHiddenUnits: 40,
  outputEpochs: 200,
  outputPatience: 8,
  outputChangeThreshold: 0.01,
  outputEpsilon: 1.0,
  outputDecay: 0.0001,
  candidateEpochs: 200,
  candidatePatience: 8,
  candidateChangeThreshold: 0.03,
  candidateEpsilon: 100,
  mu: 2.0,
  weightRange: 1.0,
  sigmoidPrimeOffset: 0.1,
};

export type Resolved = typeof DEFAULTS & { scoreThreshold?: number; buildModel: boolean };

export function invalid(message: string, details: Record<string, unknown> = {}): RsError {
  return new RsError('INVALID_ARGUMENT', `cascadeCorrelation: ${message}`, details);
}

export function resolveOptions(options: CascorOptions): Resolved {
  const out: Resolved = { ...DEFAULTS, buildModel: options.buildModel ?? true };
  const ints = ['seed', 'candidates', 'maxHiddenUnits', 'outputEpochs', 'outputPatience', 'candidateEpochs', 'candidatePatience'] as const;
  const reals = ['outputChangeThreshold', 'outputEpsilon', 'outputDecay', 'candidateChangeThreshold', 'candidateEpsilon', 'mu', 'weightRange', 'sigmoidPrimeOffset'] as const;
  for (const key of ints) {
    const v = options[key];
    if (v === undefined) continue;
    const min = key === 'seed' || key === 'maxHiddenUnits' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw invalid(`options.${key} must be an integer >= ${min}, got ${String(v)}.`, { option: key, value: v });
    out[key] = v;
  }
  for (const key of reals) {
    const v = options[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalid(`options.${key} must be a finite number >= 0, got ${String(v)}.`, { option: key, value: v });
    out[key] = v;
  }
  if (options.scoreThreshold !== undefined) {
    const v = options.scoreThreshold;
    if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw invalid(`options.scoreThreshold must be in (0, 1], got ${String(v)}.`, { option: 'scoreThreshold', value: v });
    out.scoreThreshold = v;
  }
  return out;
}

/** Validated training data: inputs as float64, labels, and the class count (at least 2). */
export function readData(data: CascorData): { n: number; nIn: number; x: Float64Array; labels: Int32Array; classes: number } {
  if (!data || typeof data !== 'object' || !data.x || !data.y) throw invalid('data must be { x, y, count?, shape? }.');
  const n = data.count ?? data.y.length;
  if (!Number.isInteger(n) || n < 2 || n > data.y.length) throw invalid(`data.count must be an integer in [2, y.length], got ${String(n)}.`);
  const nIn = data.shape ? data.shape.reduce((a, b) => a * b, 1) : data.x.length / n;
  if (!Number.isInteger(nIn) || nIn < 1 || nIn * n !== data.x.length) {
    throw new RsError('DATA_MISMATCH', `cascadeCorrelation: data.x has ${data.x.length} values, which is not count (${n}) * inputSize (${String(nIn)}).`);
  }
  const x = Float64Array.from(data.x);
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) throw new RsError('DATA_MISMATCH', `cascadeCorrelation: data.x[${i}] is not finite.`);
  const labels = new Int32Array(n);
  let max = 0;
  for (let p = 0; p < n; p++) {
    const v = data.y[p];
    if (!Number.isInteger(v) || v < 0) throw new RsError('DATA_MISMATCH', `cascadeCorrelation: data.y[${p}] must be a class index >= 0, got ${String(v)}.`);
    labels[p] = v;
    max = Math.max(max, v);
  }
  return { n, nIn, x, labels, classes: Math.max(2, max + 1) };
}
