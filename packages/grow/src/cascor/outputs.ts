// Output training: quickprop on the output weights against `sum (out - target)^2`.
import { quickprop, sig } from './quickprop';
import type { CascorState } from './state';

/** Whether pattern p (outputs in `st.outs`) is misclassified under the success criterion. */
function misclassified(st: CascorState, p: number): boolean {
  const { opt, nOut, outs } = st;
  if (opt.scoreThreshold !== undefined) {
    for (let o = 0; o < nOut; o++) if (Math.abs(outs[o] - st.goals[p * nOut + o]) >= opt.scoreThreshold) return true;
    return false;
  }
  if (nOut === 1) return outs[0] > 0 !== (st.labels[p] === 1);
  let best = 0;
  for (let o = 1; o < nOut; o++) if (outs[o] > outs[best]) best = o;
  return best !== st.labels[p];
}

/** Forward pass over all patterns: error terms, misclassified count, and (optionally) slopes. */
export function outputPass(st: CascorState, withSlopes: boolean): { errorBits: number; trueError: number } {
  const { n, nOut, stride, nUnits, ow, values, outs } = st;
  let errorBits = 0;
  let trueError = 0;
  st.sumErr.fill(0);
  st.sumSqErr = 0;
  for (let p = 0; p < n; p++) {
    const v = p * stride;
    for (let o = 0; o < nOut; o++) {
      const w = o * stride;
      let s = 0;
      for (let i = 0; i < nUnits; i++) s += ow[w + i] * values[v + i];
      outs[o] = sig(s);
    }
    if (misclassified(st, p)) errorBits++;
    for (let o = 0; o < nOut; o++) {
      const dif = outs[o] - st.goals[p * nOut + o];
      const e = dif * (st.opt.sigmoidPrimeOffset + 0.25 - outs[o] * outs[o]);
      trueError += dif * dif;
      st.errs[p * nOut + o] = e;
      st.sumErr[o] += e;
      st.sumSqErr += e * e;
      if (withSlopes) {
        const w = o * stride;
        for (let i = 0; i < nUnits; i++) st.oSlope[w + i] += e * values[v + i];
      }
    }
  }
  return { errorBits, trueError };
}

/** Output phase; returns the epochs it ran and the misclassified count at its end. */
export function trainOutputs(st: CascorState): { epochs: number; errors: number } {
  const { opt } = st;
  st.oDelta.fill(0);
  st.oPrev.fill(0);
  st.oSlope.fill(0);
  const eps = opt.outputEpsilon / st.n;
  let lastError = 0;
  let quit = opt.outputEpochs;
  let epochs = 0;
  for (let e = 0; e < opt.outputEpochs; e++) {
    const { errorBits, trueError } = outputPass(st, true);
    epochs++;
    if (errorBits === 0) {
      st.oSlope.fill(0);
      return { epochs, errors: 0 };
    }
    for (let o = 0; o < st.nOut; o++) quickprop(st.ow, st.oDelta, st.oSlope, st.oPrev, o * st.stride, st.nUnits, eps, opt.mu, opt.outputDecay);
    if (Math.abs(trueError - lastError) > lastError * opt.outputChangeThreshold) {
      lastError = trueError;
      quit = e + opt.outputPatience;
    } else if (e >= quit) {
      break;
    }
  }
  // Errors of the final weights, for the candidates and the result.
  const { errorBits } = outputPass(st, false);
  return { epochs, errors: errorBits };
}
