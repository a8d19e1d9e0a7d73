// The numeric state of a growing cascade-correlation network (plain Float64Arrays), shared by the
// output phase, the candidate phase and the orchestration in cascor.ts.
import { RsError, createRng, type SeededRng } from '@rs/core';
import type { Resolved } from './options';
import { sig } from './quickprop';

export interface CascorState {
  readonly opt: Resolved;
  /** Patterns, inputs, outputs. */
  readonly n: number;
  readonly nIn: number;
  readonly nOut: number;
  /** Values per pattern: bias, inputs, hidden (up to maxHiddenUnits). */
  readonly stride: number;
  readonly labels: Int32Array;
  /** Unit values, `n * stride`: [1, inputs..., h_0...] per pattern. */
  readonly values: Float64Array;
  /** Targets (+-0.5), `n * nOut`. */
  readonly goals: Float64Array;
  /** Live fan-in: 1 + nIn + installed hidden units. */
  nUnits: number;
  /** Incoming weights of the installed hidden units. */
  readonly hidden: Float64Array[];
  /** Uniform initial weight in [-weightRange, weightRange]. */
  readonly uniform: () => number;
  /** Output weights: nOut rows of `stride`; only the first nUnits columns are live. */
  readonly ow: Float64Array;
  readonly oDelta: Float64Array;
  readonly oSlope: Float64Array;
  readonly oPrev: Float64Array;
  /** Outputs of the current pattern. */
  readonly outs: Float64Array;
  /** E_po = (out - goal) * f'(out), for the candidates. */
  readonly errs: Float64Array;
  readonly sumErr: Float64Array;
  sumSqErr: number;
}

export function createState(opt: Resolved, data: { n: number; nIn: number; x: Float64Array; labels: Int32Array; classes: number }): CascorState {
  const { n, nIn, x, labels, classes } = data;
  const nOut = classes === 2 ? 1 : classes;
  const rng: SeededRng = createRng(opt.seed);
  const uniform = (): number => (rng.next() * 2 - 1) * opt.weightRange;
  const stride = 1 + nIn + opt.maxHiddenUnits;
  const values = new Float64Array(n * stride);
  for (let p = 0; p < n; p++) {
    values[p * stride] = 1;
    for (let i = 0; i < nIn; i++) values[p * stride + 1 + i] = x[p * nIn + i];
  }
  const goals = new Float64Array(n * nOut);
  for (let p = 0; p < n; p++) {
    for (let o = 0; o < nOut; o++) goals[p * nOut + o] = (nOut === 1 ? labels[p] === 1 : labels[p] === o) ? 0.5 : -0.5;
  }
  const nUnits = 1 + nIn;
  const ow = new Float64Array(nOut * stride);
  for (let o = 0; o < nOut; o++) for (let i = 0; i < nUnits; i++) ow[o * stride + i] = uniform();
  return {
    opt,
    n,
    nIn,
    nOut,
    stride,
    labels,
    values,
    goals,
    nUnits,
    hidden: [],
    uniform,
    ow,
    oDelta: new Float64Array(nOut * stride),
    oSlope: new Float64Array(nOut * stride),
    oPrev: new Float64Array(nOut * stride),
    outs: new Float64Array(nOut),
    errs: new Float64Array(n * nOut),
    sumErr: new Float64Array(nOut),
    sumSqErr: 0,
  };
}

/** Installs a trained candidate: fixed incoming weights, its value for every pattern, output weight -correlation. */
export function installCandidate(st: CascorState, weights: Float64Array, cor: Float64Array): void {
  // Frozen weights are rounded to float32 so that the Model (float32) holds exactly them.
  for (let i = 0; i < st.nUnits; i++) weights[i] = Math.fround(weights[i]);
  const col = 1 + st.nIn + st.hidden.length;
  for (let p = 0; p < st.n; p++) {
    const v = p * st.stride;
    let s = 0;
    for (let i = 0; i < st.nUnits; i++) s += weights[i] * st.values[v + i];
    st.values[v + col] = sig(s);
  }
  st.hidden.push(weights);
  for (let o = 0; o < st.nOut; o++) st.ow[o * st.stride + col] = -cor[o];
  st.nUnits += 1;
}

/** The live output weights, one row of fan-in nUnits per output. */
export function snapshotOutput(st: CascorState): Float64Array[] {
  return Array.from({ length: st.nOut }, (_, o) => st.ow.slice(o * st.stride, o * st.stride + st.nUnits));
}

/** Forward values of a trained network over new inputs: [bias, inputs, hidden...] per sample. */
export function networkPredict(nIn: number, nOut: number, hidden: Float64Array[], output: Float64Array[], x: ArrayLike<number>, count?: number): Float64Array {
  const n = count ?? x.length / nIn;
  if (!Number.isInteger(n) || n * nIn !== x.length) throw new RsError('DATA_MISMATCH', `predict: x has ${x.length} values, not a multiple of inputSize ${nIn}.`);
  const width = 1 + nIn + hidden.length;
  const v = new Float64Array(width);
  const out = new Float64Array(n * nOut);
  for (let p = 0; p < n; p++) {
    v[0] = 1;
    for (let i = 0; i < nIn; i++) v[1 + i] = x[p * nIn + i];
    for (let k = 0; k < hidden.length; k++) {
      const w = hidden[k];
      let s = 0;
      for (let i = 0; i < w.length; i++) s += w[i] * v[i];
      v[1 + nIn + k] = sig(s);
    }
    for (let o = 0; o < nOut; o++) {
      const w = output[o];
      let s = 0;
      for (let i = 0; i < width; i++) s += w[i] * v[i];
      out[p * nOut + o] = sig(s) + 0.5;
    }
  }
  return out;
}

/**
 * Trains a cascade-correlation network (Fahlman & Lebiere 1990) on a classification data set
 * and mirrors it into an `@rs/core` Model that grows by one journaled edit per installed unit
 * (technique `grow`), hidden units' incoming weights frozen. See the module comment for the
 * algorithm and the optimizer (quickprop). Needs a TensorFlow.js backend unless
 * `buildModel: false`.
 *
 * @example
 * const { x, y, count } = twoSpirals();
 * const { solved, hiddenUnits, epochs, model } = cascadeCorrelation({ x, y, count }, { seed: 1 });
 * model?.journal.length === hiddenUnits; // one 'grow' entry per unit
 */