// Candidate training: a pool of units maximising the correlation score S with the residual error.
import { quickprop, sig } from './quickprop';
import type { CascorState } from './state';

/** The candidate pool of one round: weights, quickprop state and correlation sums. */
interface Pool {
  /** Candidates. */
  readonly nc: number;
  readonly cw: Float64Array;
  readonly cDelta: Float64Array;
  readonly cSlope: Float64Array;
  readonly cPrev: Float64Array;
  /** Running sum_p V_p E_po. */
  readonly cor: Float64Array;
  readonly prevCor: Float64Array;
  readonly sumVal: Float64Array;
  readonly avgErr: Float64Array;
  /** sum_po E_po^2 (1 when zero). */
  readonly sq: number;
  best: number;
  bestScore: number;
}

function createPool(st: CascorState): Pool {
  const { nOut, stride } = st;
  const nc = st.opt.candidates;
  const cw = new Float64Array(nc * stride);
  for (let u = 0; u < nc; u++) for (let i = 0; i < st.nUnits; i++) cw[u * stride + i] = st.uniform();
  const avgErr = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) avgErr[o] = st.sumErr[o] / st.n;
  return {
    nc,
    cw,
    cDelta: new Float64Array(nc * stride),
    cSlope: new Float64Array(nc * stride),
    cPrev: new Float64Array(nc * stride),
    cor: new Float64Array(nc * nOut),
    prevCor: new Float64Array(nc * nOut),
    sumVal: new Float64Array(nc),
    avgErr,
    sq: st.sumSqErr > 0 ? st.sumSqErr : 1,
    best: 0,
    bestScore: 0,
  };
}

/** Turns the sums of a pass into correlations (prevCor) and scores; resets the sums. */
function adjust(st: CascorState, pool: Pool): void {
  const { nOut } = st;
  const { cor, prevCor, sumVal } = pool;
  pool.best = 0;
  pool.bestScore = -1;
  for (let u = 0; u < pool.nc; u++) {
    const avgV = sumVal[u] / st.n;
    let score = 0;
    for (let o = 0; o < nOut; o++) {
      const c = (cor[u * nOut + o] - avgV * st.sumErr[o]) / pool.sq;
      prevCor[u * nOut + o] = c;
      cor[u * nOut + o] = 0;
      score += Math.abs(c);
    }
    sumVal[u] = 0;
    if (score > pool.bestScore) {
      pool.bestScore = score;
      pool.best = u;
    }
  }
}

/** One pass over the patterns: correlation sums and (optionally) slopes of -S. */
function pass(st: CascorState, pool: Pool, withSlopes: boolean): void {
  const { n, nOut, stride, nUnits, values, errs } = st;
  const { cw, cor, prevCor, avgErr, sq } = pool;
  for (let p = 0; p < n; p++) {
    const v = p * stride;
    for (let u = 0; u < pool.nc; u++) {
      const w = u * stride;
      let s = 0;
      for (let i = 0; i < nUnits; i++) s += cw[w + i] * values[v + i];
      const value = sig(s);
      pool.sumVal[u] += value;
      let change = 0;
      for (let o = 0; o < nOut; o++) {
        const e = errs[p * nOut + o];
        cor[u * nOut + o] += e * value;
        if (withSlopes) change -= (prevCor[u * nOut + o] < 0 ? -1 : 1) * ((e - avgErr[o]) / sq);
      }
      if (withSlopes) {
        change *= 0.25 - value * value;
        for (let i = 0; i < nUnits; i++) pool.cSlope[w + i] += change * values[v + i];
      }
    }
  }
}

/** Candidate phase; returns the best candidate's weights (fan-in nUnits), score and correlations. */
export function trainCandidates(st: CascorState): { weights: Float64Array; score: number; cor: Float64Array; epochs: number } {
  const { opt, stride, nOut, nUnits } = st;
  const pool = createPool(st);
  // A first correlation-only pass sets the sign of each candidate's correlations.
  pass(st, pool, false);
  adjust(st, pool);
  let epochs = 1;
  const eps = opt.candidateEpsilon / (st.n * nUnits);
  let lastScore = 0;
  let quit = opt.candidateEpochs;
  for (let e = 0; e < opt.candidateEpochs; e++) {
    pass(st, pool, true);
    for (let u = 0; u < pool.nc; u++) quickprop(pool.cw, pool.cDelta, pool.cSlope, pool.cPrev, u * stride, nUnits, eps, opt.mu, 0);
    adjust(st, pool);
    epochs++;
    if (pool.bestScore > lastScore * (1 + opt.candidateChangeThreshold)) {
      lastScore = pool.bestScore;
      quit = e + opt.candidatePatience;
    } else if (e >= quit) {
      break;
    }
  }
  const { best } = pool;
  return {
    weights: pool.cw.slice(best * stride, best * stride + nUnits),
    score: pool.bestScore,
    cor: pool.prevCor.slice(best * nOut, best * nOut + nOut),
    epochs,
  };
}
