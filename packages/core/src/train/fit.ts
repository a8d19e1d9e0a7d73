import { tf, type Tensor } from '../tf';
import { RsError, formatShape, isRsError } from '../errors';
import type { Model } from '../model';
import { createRng, permutation } from '../rng';
import { adam, type Optimizer } from './optimizers';
import { resolveLoss, type LossFn, type LossName } from './losses';
import { trainStep } from './gradients';
import { requireBackend } from '../instance';
import { progressBar, type Callback, type EpochInfo, type EpochLogs } from './callbacks';

export type { Callback, EpochInfo, EpochLogs, StepInfo, TrainBeginInfo, TrainEndInfo } from './callbacks';

/** Inputs (one tensor per graph input) and targets, batch-major. */
export interface Dataset {
  x: Tensor | Tensor[];
  y: Tensor;
}

export interface FitOptions {
  loss: LossName | LossFn;
  optimizer?: Optimizer;
  epochs?: number;
  batchSize?: number;
  /** Stop after this many steps in total. */
  maxSteps?: number;
  shuffle?: boolean;
  /** Seeds shuffling and dropout. Default 0. */
  seed?: number;
  /** Data evaluated after every epoch (`valLoss`, `valAccuracy` in the logs). */
  validation?: Dataset;
  callbacks?: Callback[];
  /** Print one line per epoch (console.log). */
  verbose?: boolean;
  /** A progress bar on a terminal's stderr ({@link progressBar}); ignored when stderr is not a terminal. */
  progress?: boolean;
}

/** What `fit` returns: plain data (`JSON.stringify(history)` works). */
export interface FitHistory {
  /** One entry per epoch run. */
  epochs: EpochLogs[];
  steps: number;
  /** Training loss of every step. */
  losses: number[];
}

function asList(x: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(x) ? x : [x];
}

function checkData(model: Model, data: Dataset, what: string, loss?: LossName | LossFn): number {
  if (typeof data !== 'object' || data === null || data.x === undefined || data.y === undefined) {
    throw new RsError('DATA_MISMATCH', `${what}: data must be { x, y } with tensors.`);
  }
  const xs = asList(data.x);
  if (![...xs, data.y].every((t) => t instanceof tf.Tensor)) throw new RsError('DATA_MISMATCH', `${what}: data.x and data.y must be tensors.`);
  if (xs.length !== model.plan.inputs.length) {
    throw new RsError('DATA_MISMATCH', `${what}: the model takes ${model.plan.inputs.length} input(s), got ${xs.length}.`);
  }
  const n = xs[0].shape[0];
  for (const x of [...xs, data.y]) {
    if (x.shape[0] !== n) throw new RsError('DATA_MISMATCH', `${what}: inputs and targets must have the same number of rows, got ${formatShape(x.shape)} and ${n} rows.`);
  }
  if (n === 0) throw new RsError('DATA_MISMATCH', `${what}: the data set is empty.`);
  xs.forEach((x, i) => checkFinite(x, xs.length === 1 ? 'x' : `x[${i}]`, what));
  checkFinite(data.y, 'y', what);
  if (typeof loss === 'string') checkTargets(model, data.y, loss, n, what);
  return n;
}

/** Refuses NaN or Infinity in a float tensor, naming the first row that holds one. */
function checkFinite(t: Tensor, name: string, what: string): void {
  if (t.dtype !== 'float32') return;
  const [count, row] = tf.tidy(() => {
    const bad = tf.logicalNot(tf.isFinite(t));
    const perRow = tf.sum(tf.reshape(tf.cast(bad, 'int32'), [t.shape[0], -1]), 1);
    return [tf.sum(perRow).dataSync()[0], tf.argMax(perRow).dataSync()[0]];
  });
  if (count > 0) {
    throw new RsError('NON_FINITE', `${what}: ${name} holds ${count} NaN or infinite value(s) (the first in row ${row}); training on them would turn every weight into NaN.`, {
      tensor: name,
      count,
      row,
    });
  }
}

/** For the built-in losses: targets whose width or class ids do not fit the model's output. */
function checkTargets(model: Model, y: Tensor, loss: LossName, n: number, what: string): void {
  const out = model.validated.infos.get(model.plan.outputs[0])?.shape ?? [];
  const rest = out.slice(1);
  if (rest.length === 0 || rest.some((d) => d === null)) return; // width known only at run time
  const perRow = (rest as number[]).reduce((a, b) => a * b, 1);
  const classes = rest[rest.length - 1] as number;
  const yPerRow = y.size / n;
  if (loss === 'softmaxCrossEntropy' && y.dtype === 'int32') {
    if (yPerRow * classes !== perRow) {
      throw new RsError('DATA_MISMATCH', `${what}: ${yPerRow} class id(s) per row do not match the model's output ${formatShape(out)} (expected ${perRow / classes}).`, { targets: y.shape, output: out });
    }
    const [min, max] = tf.tidy(() => [tf.min(y).dataSync()[0], tf.max(y).dataSync()[0]]);
    if (min < 0 || max >= classes) {
      throw new RsError('DATA_MISMATCH', `${what}: class ids must be in 0..${classes - 1} (the model has ${classes} outputs), got ids from ${min} to ${max}.`, { min, max, classes });
    }
    return;
  }
  if (yPerRow !== perRow || (loss === 'softmaxCrossEntropy' && y.shape[y.shape.length - 1] !== classes)) {
    throw new RsError('DATA_MISMATCH', `${what}: targets ${formatShape(y.shape)} do not match the model's output ${formatShape(out)} for loss '${loss}' (each row needs ${perRow} value(s)${loss === 'softmaxCrossEntropy' ? `, one-hot over ${classes} classes, or int32 class ids` : ''}).`, {
      targets: y.shape,
      output: out,
    });
  }
}

/**
 * Trains the model. Callbacks may edit the model between steps.
 *
 * @example
 * const history = await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 5, batchSize: 64 });
 */
export async function fit(model: Model, data: Dataset, options: FitOptions): Promise<FitHistory> {
  requireBackend('fit');
  if (typeof options !== 'object' || options === null) throw new RsError('INVALID_ARGUMENT', 'fit takes options { loss, ... }.');
  const lossFn = resolveLoss(options.loss);
  const n = checkData(model, data, 'fit', options.loss);
  if (options.validation) checkData(model, options.validation, 'fit validation', options.loss);
  if (options.maxSteps !== undefined && !(Number.isInteger(options.maxSteps) && options.maxSteps >= 1)) {
    throw new RsError('INVALID_ARGUMENT', `maxSteps must be a positive integer, got ${String(options.maxSteps)}.`);
  }
  const epochs = options.epochs ?? 1;
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(epochs) || epochs < 1) throw new RsError('INVALID_ARGUMENT', `epochs must be a positive integer, got ${String(epochs)}.`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RsError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${String(batchSize)}.`);
  const optimizer = options.optimizer ?? adam();
  const rng = createRng(options.seed ?? 0);
  const xs = asList(data.x);
  const history: FitHistory = { epochs: [], steps: 0, losses: [] };
  const callbacks = [...(options.callbacks ?? []), ...(options.progress ? [progressBar()] : [])];
  const batches = Math.ceil(n / batchSize);
  let stopped = false;
  const stop = (): void => {
    stopped = true;
  };
  for (const cb of callbacks) cb.onTrainBegin?.({ model, epochs, batches, rows: n });
  let failed = true;
  try {
    for (let epoch = 0; epoch < epochs && !stopped; epoch++) {
      const started = Date.now();
      const order = options.shuffle === false ? Int32Array.from({ length: n }, (_, i) => i) : permutation(n, rng);
      const sums = { loss: 0, rows: 0, steps: 0, losses: {} as Record<string, number>, metrics: {} as Record<string, number> };
      for (let start = 0, batch = 0; start < n && !stopped; start += batchSize, batch++) {
        const rows = order.subarray(start, Math.min(n, start + batchSize));
        const index = tf.tensor1d(rows, 'int32');
        const bx = xs.map((x) => tf.gather(x, index));
        const by = tf.gather(data.y, index);
        index.dispose();
        let result;
        try {
          result = trainStep(model, bx, by, lossFn, optimizer, rng);
        } catch (error) {
          if (isRsError(error, 'NON_FINITE')) {
            const where = `epoch ${epoch + 1}, step ${history.steps + 1} of this fit`;
            throw new RsError('NON_FINITE', `fit stopped at ${where}: ${error.message.replace(/^\[NON_FINITE\] /, '')}`, { ...error.details, epoch, step: history.steps + 1 });
          }
          throw error;
        } finally {
          for (const t of [...bx, by]) t.dispose();
        }
        history.steps += 1;
        history.losses.push(result.loss);
        sums.loss += result.loss * rows.length;
        sums.rows += rows.length;
        sums.steps += 1;
        for (const [k, v] of Object.entries(result.losses)) sums.losses[k] = (sums.losses[k] ?? 0) + v;
        for (const [k, v] of Object.entries(result.metrics)) sums.metrics[k] = (sums.metrics[k] ?? 0) + v;
        const info = { model, epoch, step: history.steps, batch, batches, loss: result.loss, losses: result.losses, metrics: result.metrics, stop };
        for (const cb of callbacks) {
          cb.onStepEnd?.(info);
          cb.onBatchEnd?.(info);
        }
        if (options.maxSteps !== undefined && history.steps >= options.maxSteps) stopped = true;
        // Yield to the event loop so long runs stay responsive (progress bars, signals).
        if (history.steps % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      const mean = (table: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(table).map(([k, v]) => [k, v / Math.max(sums.steps, 1)]));
      const logs: EpochLogs = { epoch, step: history.steps, loss: sums.loss / Math.max(sums.rows, 1), losses: mean(sums.losses), metrics: mean(sums.metrics), seconds: 0 };
      if (options.validation) {
        const v = evaluate(model, options.validation, { loss: options.loss, batchSize: Math.max(batchSize, 256) });
        logs.valLoss = v.loss;
        logs.valAccuracy = v.accuracy;
      }
      logs.seconds = (Date.now() - started) / 1000;
      history.epochs.push(logs);
      if (options.verbose) {
        const parts = [`epoch ${epoch + 1}/${epochs}`, `loss ${logs.loss.toFixed(4)}`];
        if (logs.valLoss !== undefined) parts.push(`val_loss ${logs.valLoss.toFixed(4)}`, `val_acc ${(100 * (logs.valAccuracy ?? 0)).toFixed(2)}%`);
        console.log(parts.join('  '));
      }
      const info: EpochInfo = { ...logs, logs: { ...logs }, model, epochs, stop };
      for (const cb of callbacks) cb.onEpochEnd?.(info);
    }
    failed = false;
  } finally {
    for (const cb of callbacks) cb.onTrainEnd?.({ model, epochs: history.epochs, steps: history.steps, failed });
  }
  return history;
}

/**
 * Loss and classification accuracy (argmax of the last axis vs int32 ids or one-hot targets).
 *
 * @example
 * const { accuracy } = evaluate(model, { x: testX, y: testY });
 */
export function evaluate(
  model: Model,
  data: Dataset,
  options: { loss?: LossName | LossFn; batchSize?: number } = {},
): { loss: number; accuracy: number } {
  const lossFn = resolveLoss(options.loss ?? 'softmaxCrossEntropy');
  const n = checkData(model, data, 'evaluate', options.loss ?? 'softmaxCrossEntropy');
  const batchSize = options.batchSize ?? 512;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RsError('INVALID_ARGUMENT', `evaluate: batchSize must be a positive integer, got ${String(options.batchSize)}.`);
  const xs = asList(data.x);
  let lossSum = 0;
  let correct = 0;
  let total = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const [l, c, count] = tf.tidy(() => {
      const bx = xs.map((x) => tf.slice(x, start, size));
      const by = tf.slice(data.y, start, size);
      const out = model.apply(bx);
      const loss = lossFn(out, by);
      const classes = out.shape[out.shape.length - 1];
      const predicted = tf.argMax(tf.reshape(out, [-1, classes]), -1);
      const truth = by.dtype === 'int32' ? tf.reshape(by, [-1]) : tf.argMax(tf.reshape(by, [-1, classes]), -1);
      const hits = tf.sum(tf.cast(tf.equal(predicted, truth), 'float32'));
      return [loss.dataSync()[0], hits.dataSync()[0], predicted.size] as const;
    });
    lossSum += l * size;
    correct += c;
    total += count;
  }
  return { loss: lossSum / n, accuracy: correct / total };
}
