import type { Model } from '@rs/core';

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
