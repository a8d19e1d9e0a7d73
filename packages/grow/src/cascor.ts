import { trainCandidates } from './cascor/candidates';
import { createModel, installUnit } from './cascor/mirror';
import { readData, resolveOptions } from './cascor/options';
import { trainOutputs } from './cascor/outputs';
import { createState, installCandidate, networkPredict, snapshotOutput } from './cascor/state';
import type { CascorData, CascorNetwork, CascorOptions, CascorResult, CascorUnit } from './cascor/types';

export type { CascorData, CascorOptions, CascorResult, CascorUnit, CascorNetwork } from './cascor/types';

/**
 * Cascade-correlation (Fahlman & Lebiere 1990, "The Cascade-Correlation Learning Architecture").
 *
 * The numeric training runs in plain JavaScript (Float64Array): the networks are tiny (a few
 * inputs, tens of hidden units, hundreds of points) and per-op TensorFlow.js overhead would
 * dominate. The structure is mirrored into an `@rs/core` `Model` as it grows: one journaled
 * `model.edit` per installed unit.
 *
 * Units follow the paper and Fahlman's reference simulator (cascor1.c): hidden and output units
 * are symmetric sigmoids `f(s) = 1 / (1 + exp(-s)) - 0.5` in (-0.5, 0.5); targets are +-0.5.
 * Unit 0 of every unit's fan-in is a constant bias of 1, then the inputs, then every earlier
 * hidden unit.
 *
 * The optimizer is **quickprop** (Fahlman 1988), full batch, for both phases. Per weight, with
 * slope `s = dE/dw + decay * w` (for candidates `E = -S`, the negated correlation score), the
 * previous slope `p` and the previous step `d`:
 * - `d == 0`: gradient step `-eps * s`;
 * - otherwise the step is the jump to the minimum of the parabola through `p` and `s`,
 *   `d * s / (p - s)`, limited to `mu * d` (when `s` has not shrunk below `mu / (1 + mu) * p`),
 *   plus the gradient term `-eps * s` when `s` still points the same way as `d`.
 * `eps` is `outputEpsilon / patterns` for output weights and `candidateEpsilon / (patterns *
 * fan-in)` for candidate weights, as in cascor1.c.
 *
 * One round: (1) train the output weights on the error `sum (out - target)^2` until the error
 * changes by less than `outputChangeThreshold` (relative) for `outputPatience` epochs, or every
 * point is classified correctly; (2) train a pool of `candidates` units, each fed by the bias,
 * the inputs and every installed hidden unit, to maximise
 * `S = sum_o | sum_p (V_p - mean V) (E_po - mean E_o) | / sum_po E_po^2`, the covariance of the
 * candidate's value with the residual error `E_po = (out - target) * f'(out)` (f' with the 0.1
 * sigmoid-prime offset), until the best score improves by less than `candidateChangeThreshold`
 * (relative) for `candidatePatience` epochs; (3) install the best candidate with frozen incoming
 * weights and an output weight of `-correlation`; go to (1).
 *
 * Modules under cascor/: quickprop.ts (the update rule), outputs.ts (output training),
 * candidates.ts (candidate training), state.ts (the shared numeric state, unit installation,
 * prediction), mirror.ts (the Model mirror), options.ts and types.ts.
 *
 * Epochs are counted like the paper: every output-training and candidate-training pass over the
 * training set (the pool's first, correlation-only pass included).
 */

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
export function cascadeCorrelation(data: CascorData, options: CascorOptions = {}): CascorResult {
  const opt = resolveOptions(options);
  const st = createState(opt, readData(data));
  const { n, nIn, nOut, hidden } = st;
  let outputEpochs = 0;
  let candidateEpochs = 0;

  // Round 0: outputs only.
  let phase = trainOutputs(st);
  outputEpochs += phase.epochs;
  let errors = phase.errors;
  const model = opt.buildModel ? createModel(nIn, nOut, snapshotOutput(st), opt.seed) : undefined;
  const units: CascorUnit[] = [];
  try {
    while (errors > 0 && hidden.length < opt.maxHiddenUnits) {
      const cand = trainCandidates(st);
      candidateEpochs += cand.epochs;
      const k = hidden.length;
      installCandidate(st, cand.weights, cand.cor);
      phase = trainOutputs(st);
      outputEpochs += phase.epochs;
      errors = phase.errors;
      const unit: CascorUnit = { index: k, correlation: cand.score, candidateEpochs: cand.epochs, outputEpochs: phase.epochs, errors };
      units.push(unit);
      if (model) installUnit(model, nIn, hidden, snapshotOutput(st), unit);
    }
  } catch (error) {
    model?.dispose();
    throw error;
  }

  const finalOutput = snapshotOutput(st);
  const finalHidden = hidden.map((w) => w.slice());
  const network: CascorNetwork = {
    inputSize: nIn,
    outputs: nOut,
    hidden: finalHidden,
    output: finalOutput,
    predict: (xs, count) => networkPredict(nIn, nOut, finalHidden, finalOutput, xs, count),
  };
  return {
    solved: errors === 0,
    hiddenUnits: hidden.length,
    epochs: outputEpochs + candidateEpochs,
    outputEpochs,
    candidateEpochs,
    errors,
    accuracy: (n - errors) / n,
    units,
    network,
    model,
  };
}
