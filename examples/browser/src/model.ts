// What the page does with a model, apart from the page itself: load it from bytes, describe it,
// and classify digits with per-digit early exit.
import { tf, ancestors, loadFromBuffer, type Model } from '@rs/core';
import { earlyExitPredict, exitOrder, exitPolicy } from '@rs/dynamic';

/** Pixels per MNIST digit. */
export const PIXELS = 784;

/** What the page shows about a loaded model. */
export interface ModelSummary {
  params: number;
  nonzeroParams: number;
  /** FLOPs per digit with every exit computed (the graph as a whole). */
  flops: number;
  /** The exits in execution order, each with the FLOPs a digit that leaves there costs. */
  exits: { id: string; flops: number }[];
  policy: { rule: string; thresholds: number[] } | undefined;
  journal: { seq: number; technique: string; reason: string; params: number; nonzeroParams: number }[];
  bytes: number;
}

/** Result of classifying a batch: per digit, the class, the exit taken and its logits. */
export interface Classification {
  predictions: number[];
  exitIndex: number[];
  /** `count * classes` logits of the exit each digit left at, row by row. */
  logits: number[];
  classes: number;
}

/**
 * Loads a model saved by `save`/`saveToBuffer` in Node and checks that it is an early-exit
 * classifier of 784-pixel digits with a stored exit policy.
 */
export function loadModel(bytes: ArrayBuffer): Model {
  const model = loadFromBuffer(bytes);
  try {
    const input = model.graph.inputs[0];
    if (model.graph.inputs.length !== 1 || input.shape.length !== 2 || input.shape[1] !== PIXELS) {
      throw new Error(`This page classifies 28x28 digits: the model's input must be [batch, ${PIXELS}], it is ${JSON.stringify(model.graph.inputs.map((i) => i.shape))}.`);
    }
    if (exitOrder(model).length < 2) throw new Error('The model has no early exit: add one with addExit (@rs/dynamic) before saving it.');
    if (exitPolicy(model) === undefined) {
      throw new Error('The model has no stored exit policy: call setExitPolicy (@rs/dynamic) with the calibrated threshold before saving it.');
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

export function summarize(model: Model, bytes: number): ModelSummary {
  const counts = model.counts();
  const flopsOf = new Map(counts.perNode.map((n) => [n.node, n.flops]));
  const exits = exitOrder(model);
  const policy = exitPolicy(model);
  return {
    params: counts.params,
    nonzeroParams: counts.nonzeroParams,
    flops: counts.flops,
    // A digit leaving at exit e has run every node that exits 0..e need (earlier heads included).
    exits: exits.map((id, e) => {
      let flops = 0;
      for (const node of ancestors(model.graph, exits.slice(0, e + 1))) flops += flopsOf.get(node) ?? 0;
      return { id, flops };
    }),
    policy: policy && { rule: policy.rule, thresholds: Array.isArray(policy.thresholds) ? policy.thresholds : [policy.thresholds] },
    journal: model.journal.map((entry) => ({
      seq: entry.seq,
      technique: entry.technique,
      reason: entry.reason,
      params: entry.params.after,
      nonzeroParams: entry.nonzeroParams.after,
    })),
    bytes,
  };
}

/**
 * Classifies `count` digits (784 floats each in [0, 1], row-major) with the exit policy stored
 * in the model: confident digits leave at the early exit.
 */
export async function classify(model: Model, pixels: ArrayLike<number>, count: number): Promise<Classification> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`classify: count must be a positive integer, got ${String(count)}.`);
  if (pixels.length !== count * PIXELS) throw new Error(`classify: ${count} digits need ${count * PIXELS} pixels, got ${pixels.length}.`);
  const x = tf.tensor2d(Float32Array.from(pixels), [count, PIXELS]);
  try {
    const { logits, exitIndex } = earlyExitPredict(model, x);
    try {
      const values = (await logits.data()) as Float32Array;
      const classes = logits.shape[1] as number;
      return { predictions: argmaxRows(values, classes), exitIndex: Array.from(exitIndex), logits: Array.from(values), classes };
    } finally {
      logits.dispose();
    }
  } finally {
    x.dispose();
  }
}

/** Index of the largest value of each row (the first one on ties). */
export function argmaxRows(values: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let row = 0; row * classes < values.length; row++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (values[row * classes + c] > values[row * classes + best]) best = c;
    out.push(best);
  }
  return out;
}

/** Softmax of one row of logits, in plain JavaScript (ten numbers need no tensor). */
export function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}
