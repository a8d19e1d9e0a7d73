import { Model, RsError, createRng, tf, type GraphDef, type SeededRng, type Tensor } from '@rs/core';

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
 * Epochs are counted like the paper: every output-training and candidate-training pass over the
 * training set (the pool's first, correlation-only pass included).
 */

/** Training data: inputs and integer class labels. */
export interface CascorData {
  /** Inputs, `count * inputSize` values, sample-major (as `twoSpirals().x`). */
  x: ArrayLike<number>;
  /**
   * Class labels. Two classes (0/1) use one output unit (positive output = class 1); K > 2
   * classes use K output units with one-hot targets (argmax).
   */
  y: ArrayLike<number>;
  /** Number of samples (default `y.length`). */
  count?: number;
  /** Shape of one sample, `[inputSize]` (default `[x.length / count]`). */
  shape?: readonly number[];
}

export interface CascorOptions {
  /** Seed of the weight initialisation (default 0). */
  seed?: number;
  /** Candidate units trained in parallel per round (default 8). */
  candidates?: number;
  /** Stop (unsolved) after this many hidden units (default 40). */
  maxHiddenUnits?: number;
  /** Epoch limit of one output-training phase (default 200). */
  outputEpochs?: number;
  /** Output phase ends when the error moved less than the threshold for this many epochs (default 8). */
  outputPatience?: number;
  /** Relative error change that counts as progress (default 0.01). */
  outputChangeThreshold?: number;
  /**
   * Quickprop gradient rate of the output weights, divided by the patterns (default 1.0).
   * Fahlman's cascor1.c ships 0.35 for outputs and 1.0 for candidates; on two-spirals those
   * candidates learn far too slowly (2 of 20 runs solved within 40 units), while 1.0 / 100
   * gives 100 of 100 at a median of 14 units.
   */
  outputEpsilon?: number;
  /** Weight decay added to output slopes (default 0.0001). */
  outputDecay?: number;
  /** Epoch limit of one candidate-training phase (default 200). */
  candidateEpochs?: number;
  /** Candidate phase ends when the best score improved less than the threshold for this many epochs (default 8). */
  candidatePatience?: number;
  /** Relative score improvement that counts as progress (default 0.03). */
  candidateChangeThreshold?: number;
  /** Quickprop gradient rate of candidate weights, divided by patterns * fan-in (default 100). */
  candidateEpsilon?: number;
  /** Quickprop maximum growth factor (default 2.0, both phases; Fahlman's quickprop paper uses 1.75). */
  mu?: number;
  /** Initial weights are uniform in [-weightRange, weightRange] (default 1.0). */
  weightRange?: number;
  /** Added to the output sigmoid's derivative to avoid flat spots (default 0.1). */
  sigmoidPrimeOffset?: number;
  /**
   * Success criterion. Undefined (default): a point is correct when its output has the sign of
   * its target (output > 0.5 on the Model's 0..1 sigmoid), or the argmax is the label for K > 2
   * classes. A number: every output must be within this distance of its +-0.5 target (the
   * paper's "score threshold" was 0.4).
   */
  scoreThreshold?: number;
  /** Mirror the network into an `@rs/core` Model with one journaled edit per unit (default true). */
  buildModel?: boolean;
}

/** One installed hidden unit. */
export interface CascorUnit {
  /** Index of the unit (0-based): node `h{index}` in the Model. */
  index: number;
  /** Score S of the installed candidate (its last correlation pass). */
  correlation: number;
  /** Epochs of the candidate phase that produced it. */
  candidateEpochs: number;
  /** Epochs of the output phase that followed its installation. */
  outputEpochs: number;
  /** Misclassified training points after that output phase. */
  errors: number;
}

/** The trained network in plain arrays (symmetric-sigmoid parametrisation of the paper). */
export interface CascorNetwork {
  inputSize: number;
  outputs: number;
  /** Incoming weights of hidden unit k over [bias, inputs..., h_0..h_{k-1}]. */
  hidden: Float64Array[];
  /** Weights of each output unit over [bias, inputs..., h_0..h_{K-1}]. */
  output: Float64Array[];
  /**
   * Output probabilities in [0, 1] (the symmetric sigmoid + 0.5, as the Model's sigmoid output),
   * `count * outputs` values.
   */
  predict(x: ArrayLike<number>, count?: number): Float64Array;
}

export interface CascorResult {
  /** Every training point correct under the criterion. */
  solved: boolean;
  hiddenUnits: number;
  /** Output-training plus candidate-training epochs. */
  epochs: number;
  outputEpochs: number;
  candidateEpochs: number;
  /** Misclassified training points at the end. */
  errors: number;
  /** Fraction of training points correct at the end. */
  accuracy: number;
  units: CascorUnit[];
  network: CascorNetwork;
  /**
   * The network as an `@rs/core` Model (undefined with `buildModel: false`): input `x`, hidden
   * unit k = dense `h{k}.net` (1 unit, frozen) reading `cat{k}` = concat[x, h0..h{k-1}] (`x` for
   * k = 0), then tanh `h{k}`; output dense `out` over `cat{K}`, then sigmoid `prob`. The paper's
   * symmetric sigmoid is `0.5 * tanh(s / 2)`, so weights are rescaled: `prob` equals
   * `network.predict`. The journal has one `grow` entry per installed unit.
   */
  model?: Model;
}

const DEFAULTS = {
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

type Resolved = typeof DEFAULTS & { scoreThreshold?: number; buildModel: boolean };

function invalid(message: string, details: Record<string, unknown> = {}): RsError {
  return new RsError('INVALID_ARGUMENT', `cascadeCorrelation: ${message}`, details);
}

function resolveOptions(options: CascorOptions): Resolved {
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

/** Symmetric sigmoid in (-0.5, 0.5). */
const sig = (s: number): number => 1 / (1 + Math.exp(-s)) - 0.5;

/**
 * One quickprop update of `n` weights starting at `offset` (see the module comment). Slopes are
 * dE/dw of the quantity being minimised; they are moved to `prev` and cleared.
 */
function quickprop(
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

function readData(data: CascorData): { n: number; nIn: number; x: Float64Array; labels: Int32Array; classes: number } {
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

/** Forward values of a trained network over new inputs: [bias, inputs, hidden...] per sample. */
function networkPredict(nIn: number, nOut: number, hidden: Float64Array[], output: Float64Array[], x: ArrayLike<number>, count?: number): Float64Array {
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
export function cascadeCorrelation(data: CascorData, options: CascorOptions = {}): CascorResult {
  const opt = resolveOptions(options);
  const { n, nIn, x, labels, classes } = readData(data);
  const nOut = classes === 2 ? 1 : classes;
  const rng: SeededRng = createRng(opt.seed);
  const uniform = (): number => (rng.next() * 2 - 1) * opt.weightRange;

  const maxHidden = opt.maxHiddenUnits;
  const stride = 1 + nIn + maxHidden; // values per pattern: bias, inputs, hidden
  const values = new Float64Array(n * stride);
  for (let p = 0; p < n; p++) {
    values[p * stride] = 1;
    for (let i = 0; i < nIn; i++) values[p * stride + 1 + i] = x[p * nIn + i];
  }
  const goals = new Float64Array(n * nOut);
  for (let p = 0; p < n; p++) {
    for (let o = 0; o < nOut; o++) goals[p * nOut + o] = (nOut === 1 ? labels[p] === 1 : labels[p] === o) ? 0.5 : -0.5;
  }
  let nUnits = 1 + nIn;
  const hidden: Float64Array[] = [];

  // Output weights: nOut rows of `stride`; only the first nUnits columns are live.
  const ow = new Float64Array(nOut * stride);
  const oDelta = new Float64Array(nOut * stride);
  const oSlope = new Float64Array(nOut * stride);
  const oPrev = new Float64Array(nOut * stride);
  for (let o = 0; o < nOut; o++) for (let i = 0; i < nUnits; i++) ow[o * stride + i] = uniform();

  const outs = new Float64Array(nOut);
  const errs = new Float64Array(n * nOut); // E_po = (out - goal) * f'(out), for the candidates
  const sumErr = new Float64Array(nOut);
  let sumSqErr = 0;

  /** Forward pass over all patterns: error terms, misclassified count, and (optionally) slopes. */
  const outputPass = (withSlopes: boolean): { errorBits: number; trueError: number } => {
    let errorBits = 0;
    let trueError = 0;
    sumErr.fill(0);
    sumSqErr = 0;
    for (let p = 0; p < n; p++) {
      const v = p * stride;
      for (let o = 0; o < nOut; o++) {
        const w = o * stride;
        let s = 0;
        for (let i = 0; i < nUnits; i++) s += ow[w + i] * values[v + i];
        outs[o] = sig(s);
      }
      let wrong = false;
      if (opt.scoreThreshold !== undefined) {
        for (let o = 0; o < nOut; o++) if (Math.abs(outs[o] - goals[p * nOut + o]) >= opt.scoreThreshold) wrong = true;
      } else if (nOut === 1) {
        wrong = outs[0] > 0 !== (labels[p] === 1);
      } else {
        let best = 0;
        for (let o = 1; o < nOut; o++) if (outs[o] > outs[best]) best = o;
        wrong = best !== labels[p];
      }
      if (wrong) errorBits++;
      for (let o = 0; o < nOut; o++) {
        const dif = outs[o] - goals[p * nOut + o];
        const e = dif * (opt.sigmoidPrimeOffset + 0.25 - outs[o] * outs[o]);
        trueError += dif * dif;
        errs[p * nOut + o] = e;
        sumErr[o] += e;
        sumSqErr += e * e;
        if (withSlopes) {
          const w = o * stride;
          for (let i = 0; i < nUnits; i++) oSlope[w + i] += e * values[v + i];
        }
      }
    }
    return { errorBits, trueError };
  };

  let outputEpochs = 0;
  let candidateEpochs = 0;

  /** Output phase; returns the epochs it ran and the misclassified count at its end. */
  const trainOutputs = (): { epochs: number; errors: number } => {
    oDelta.fill(0);
    oPrev.fill(0);
    oSlope.fill(0);
    const eps = opt.outputEpsilon / n;
    let lastError = 0;
    let quit = opt.outputEpochs;
    let epochs = 0;
    for (let e = 0; e < opt.outputEpochs; e++) {
      const { errorBits, trueError } = outputPass(true);
      epochs++;
      if (errorBits === 0) {
        oSlope.fill(0);
        return { epochs, errors: 0 };
      }
      for (let o = 0; o < nOut; o++) quickprop(ow, oDelta, oSlope, oPrev, o * stride, nUnits, eps, opt.mu, opt.outputDecay);
      if (Math.abs(trueError - lastError) > lastError * opt.outputChangeThreshold) {
        lastError = trueError;
        quit = e + opt.outputPatience;
      } else if (e >= quit) {
        break;
      }
    }
    // Errors of the final weights, for the candidates and the result.
    const { errorBits } = outputPass(false);
    return { epochs, errors: errorBits };
  };

  const nc = opt.candidates;
  /** Candidate phase; returns the best candidate's weights (fan-in nUnits) and score. */
  const trainCandidates = (): { weights: Float64Array; score: number; cor: Float64Array; epochs: number } => {
    const cw = new Float64Array(nc * stride);
    const cDelta = new Float64Array(nc * stride);
    const cSlope = new Float64Array(nc * stride);
    const cPrev = new Float64Array(nc * stride);
    for (let u = 0; u < nc; u++) for (let i = 0; i < nUnits; i++) cw[u * stride + i] = uniform();
    const cor = new Float64Array(nc * nOut); // running sum_p V_p E_po
    const prevCor = new Float64Array(nc * nOut);
    const sumVal = new Float64Array(nc);
    const avgErr = new Float64Array(nOut);
    for (let o = 0; o < nOut; o++) avgErr[o] = sumErr[o] / n;
    const sq = sumSqErr > 0 ? sumSqErr : 1;
    let best = 0;
    let bestScore = 0;
    /** Turns the sums of a pass into correlations (prevCor) and scores; resets the sums. */
    const adjust = (): void => {
      best = 0;
      bestScore = -1;
      for (let u = 0; u < nc; u++) {
        const avgV = sumVal[u] / n;
        let score = 0;
        for (let o = 0; o < nOut; o++) {
          const c = (cor[u * nOut + o] - avgV * sumErr[o]) / sq;
          prevCor[u * nOut + o] = c;
          cor[u * nOut + o] = 0;
          score += Math.abs(c);
        }
        sumVal[u] = 0;
        if (score > bestScore) {
          bestScore = score;
          best = u;
        }
      }
    };
    const pass = (withSlopes: boolean): void => {
      for (let p = 0; p < n; p++) {
        const v = p * stride;
        for (let u = 0; u < nc; u++) {
          const w = u * stride;
          let s = 0;
          for (let i = 0; i < nUnits; i++) s += cw[w + i] * values[v + i];
          const value = sig(s);
          sumVal[u] += value;
          let change = 0;
          for (let o = 0; o < nOut; o++) {
            const e = errs[p * nOut + o];
            cor[u * nOut + o] += e * value;
            if (withSlopes) change -= (prevCor[u * nOut + o] < 0 ? -1 : 1) * ((e - avgErr[o]) / sq);
          }
          if (withSlopes) {
            change *= 0.25 - value * value;
            for (let i = 0; i < nUnits; i++) cSlope[w + i] += change * values[v + i];
          }
        }
      }
    };
    // A first correlation-only pass sets the sign of each candidate's correlations.
    pass(false);
    adjust();
    let epochs = 1;
    const eps = opt.candidateEpsilon / (n * nUnits);
    let lastScore = 0;
    let quit = opt.candidateEpochs;
    for (let e = 0; e < opt.candidateEpochs; e++) {
      pass(true);
      for (let u = 0; u < nc; u++) quickprop(cw, cDelta, cSlope, cPrev, u * stride, nUnits, eps, opt.mu, 0);
      adjust();
      epochs++;
      if (bestScore > lastScore * (1 + opt.candidateChangeThreshold)) {
        lastScore = bestScore;
        quit = e + opt.candidatePatience;
      } else if (e >= quit) {
        break;
      }
    }
    return {
      weights: cw.slice(best * stride, best * stride + nUnits),
      score: bestScore,
      cor: prevCor.slice(best * nOut, best * nOut + nOut),
      epochs,
    };
  };

  const snapshotOutput = (): Float64Array[] => Array.from({ length: nOut }, (_, o) => ow.slice(o * stride, o * stride + nUnits));

  // Round 0: outputs only.
  let phase = trainOutputs();
  outputEpochs += phase.epochs;
  let errors = phase.errors;
  const model = opt.buildModel ? createModel(nIn, nOut, snapshotOutput(), opt.seed) : undefined;
  const units: CascorUnit[] = [];
  try {
    while (errors > 0 && hidden.length < maxHidden) {
      const cand = trainCandidates();
      candidateEpochs += cand.epochs;
      // Install: fixed incoming weights, values for every pattern, output weight -correlation.
      // Frozen weights are rounded to float32 so that the Model (float32) holds exactly them.
      for (let i = 0; i < nUnits; i++) cand.weights[i] = Math.fround(cand.weights[i]);
      const k = hidden.length;
      const col = 1 + nIn + k;
      for (let p = 0; p < n; p++) {
        const v = p * stride;
        let s = 0;
        for (let i = 0; i < nUnits; i++) s += cand.weights[i] * values[v + i];
        values[v + col] = sig(s);
      }
      hidden.push(cand.weights);
      for (let o = 0; o < nOut; o++) ow[o * stride + col] = -cand.cor[o];
      nUnits += 1;
      phase = trainOutputs();
      outputEpochs += phase.epochs;
      errors = phase.errors;
      const unit: CascorUnit = { index: k, correlation: cand.score, candidateEpochs: cand.epochs, outputEpochs: phase.epochs, errors };
      units.push(unit);
      if (model) installUnit(model, nIn, hidden, snapshotOutput(), unit);
    }
  } catch (error) {
    model?.dispose();
    throw error;
  }

  const finalOutput = snapshotOutput();
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

// ---------------------------------------------------------------- the Model mirror

/**
 * Model weights for the paper's network. The Model carries t_k = tanh(s_k / 2) = 2 h_k, so a
 * hidden unit's dense computes s_k / 2 (inputs and bias halved, earlier hidden rows quartered)
 * and the output's dense reads hidden rows halved; sigmoid(s_o) = f(s_o) + 0.5.
 */
function denseKernel(nIn: number, rows: Float64Array[], hiddenScale: number, inputScale: number): { kernel: Tensor; bias: Tensor } {
  const fanIn = rows[0].length - 1;
  const units = rows.length;
  const kernel = new Float32Array(fanIn * units);
  const bias = new Float32Array(units);
  rows.forEach((w, u) => {
    bias[u] = w[0] * inputScale;
    for (let i = 0; i < fanIn; i++) kernel[i * units + u] = w[1 + i] * (i < nIn ? inputScale : hiddenScale);
  });
  return { kernel: tf.tensor2d(kernel, [fanIn, units]), bias: tf.tensor1d(bias) };
}

function createModel(nIn: number, nOut: number, output: Float64Array[], seed: number): Model {
  const graph: GraphDef = {
    inputs: [{ id: 'x', shape: [null, nIn], dtype: 'float32' }],
    nodes: [
      { id: 'out', op: 'dense', inputs: ['x'], attrs: { units: nOut } },
      { id: 'prob', op: 'sigmoid', inputs: ['out'], attrs: {} },
    ],
    outputs: ['prob'],
  };
  const { kernel, bias } = denseKernel(nIn, output, 0.5, 1);
  try {
    return Model.create(graph, { seed, params: { 'out/kernel': kernel, 'out/bias': bias } });
  } finally {
    kernel.dispose();
    bias.dispose();
  }
}

/** One journaled edit: hidden unit k (dense + tanh, frozen) and the output re-read over cat{k+1}. */
function installUnit(model: Model, nIn: number, hidden: Float64Array[], output: Float64Array[], unit: CascorUnit): void {
  const k = unit.index;
  const input = k === 0 ? 'x' : `cat${k}`;
  const h = denseKernel(nIn, [hidden[k]], 0.25, 0.5);
  const o = denseKernel(nIn, output, 0.5, 1);
  try {
    model.edit(
      (tx) => {
        tx.insertNode({ id: `h${k}.net`, op: 'dense', inputs: [input], attrs: { units: 1 } }, { params: { kernel: h.kernel, bias: h.bias } });
        tx.insertNode({ id: `h${k}`, op: 'tanh', inputs: [`h${k}.net`], attrs: {} });
        tx.insertNode({ id: `cat${k + 1}`, op: 'concat', inputs: ['x', ...Array.from({ length: k + 1 }, (_, j) => `h${j}`)], attrs: {} });
        tx.replaceNode('out', { op: 'dense', inputs: [`cat${k + 1}`], attrs: { units: output.length } }, { params: { kernel: o.kernel, bias: o.bias } });
        tx.setTrainable(`h${k}.net`, false);
      },
      {
        technique: 'grow',
        reason: `cascade-correlation: install unit ${k} (correlation ${unit.correlation.toFixed(4)} after ${unit.candidateEpochs} candidate epochs; outputs retrained ${unit.outputEpochs} epochs, ${unit.errors} training errors left)`,
        details: { ...unit },
      },
    );
  } finally {
    for (const t of [h.kernel, h.bias, o.kernel, o.bias]) t.dispose();
  }
}
