import { tf, type Tensor } from '../tf';
import { RsError } from '../errors';
import type { Model } from '../model';

/** What one epoch produced, as plain data (what `fit`'s history keeps; `JSON.stringify` works). */
export interface EpochLogs {
  /** 0-based epoch index. */
  epoch: number;
  /** Steps done so far in this fit. */
  step: number;
  /** Mean training loss over the epoch's rows. */
  loss: number;
  /** Loss and accuracy on `validation`, when given. */
  valLoss?: number;
  valAccuracy?: number;
  /** Epoch means of the auxiliary losses (`node/name`) and metrics that ops reported. */
  losses: Record<string, number>;
  metrics: Record<string, number>;
  /** Wall time of the epoch (training and validation), in seconds. */
  seconds: number;
}

/** What callbacks see after each step (batch). */
export interface StepInfo {
  model: Model;
  epoch: number;
  /** Steps done so far (1 after the first step). */
  step: number;
  /** 0-based index of the batch within the epoch, and the number of batches per epoch. */
  batch: number;
  batches: number;
  loss: number;
  /** Auxiliary losses by `node/name`, and metrics reported by ops. */
  losses: Record<string, number>;
  metrics: Record<string, number>;
  /** Ends training after this step. */
  stop(): void;
}

/** What callbacks see after each epoch: the epoch's logs plus the model and `stop()`. */
export interface EpochInfo extends EpochLogs {
  model: Model;
  /** Number of epochs this fit was asked for. */
  epochs: number;
  /** The same numbers as plain data. */
  logs: EpochLogs;
  /** Ends training after this epoch. */
  stop(): void;
}

/** Passed to `onTrainBegin`. */
export interface TrainBeginInfo {
  model: Model;
  epochs: number;
  /** Batches per epoch. */
  batches: number;
  rows: number;
}

/** Passed to `onTrainEnd`, also when training ends with an error (`failed: true`). */
export interface TrainEndInfo {
  model: Model;
  epochs: EpochLogs[];
  steps: number;
  failed: boolean;
}

/**
 * Hooks into training (Keras-style). A callback may edit the model (`info.model.edit(...)`)
 * between steps: the next step runs the edited graph with optimizer state that followed the
 * edit. `onStepEnd` and `onBatchEnd` are the same hook under two names.
 */
export interface Callback {
  onTrainBegin?(info: TrainBeginInfo): void;
  onStepEnd?(info: StepInfo): void;
  onBatchEnd?(info: StepInfo): void;
  onEpochEnd?(info: EpochInfo): void;
  onTrainEnd?(info: TrainEndInfo): void;
}

export interface EarlyStoppingOptions {
  /** What to watch: `'valLoss'` (default), `'valAccuracy'`, `'loss'`, or an op metric / auxiliary loss name. */
  monitor?: string;
  /**
   * Number of epochs without improvement after which training stops (as in Keras: 0 and 1 both
   * stop at the first epoch that does not improve). Default 0.
   */
  patience?: number;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
  /** `'min'` or `'max'`; default: `'max'` for accuracies, else `'min'`. */
  mode?: 'min' | 'max';
  /** At the end, put back the weights of the best epoch (when the structure did not change since). Default false. */
  restoreBestWeights?: boolean;
}

/** The state an early-stopping callback reports after training. */
export interface EarlyStopping extends Callback {
  /** Epoch (0-based) with the best monitored value, or -1 before the first epoch. */
  readonly bestEpoch: number;
  readonly best: number;
  /** Epoch after which training was stopped, or -1 if it ran to the end. */
  readonly stoppedEpoch: number;
  /** True when `restoreBestWeights` put the best epoch's weights back. */
  readonly restored: boolean;
}

function monitored(info: EpochInfo, monitor: string): number | undefined {
  if (monitor === 'loss' || monitor === 'valLoss' || monitor === 'valAccuracy') return info[monitor];
  return info.metrics[monitor] ?? info.losses[monitor];
}

/**
 * Stops `fit` when a monitored value stops improving (Keras' `EarlyStopping`).
 *
 * @example
 * const stopper = earlyStopping({ monitor: 'valLoss', patience: 2, restoreBestWeights: true });
 * await fit(model, train, { loss: 'softmaxCrossEntropy', epochs: 50, validation: val, callbacks: [stopper] });
 * console.log(stopper.bestEpoch, stopper.stoppedEpoch);
 */
export function earlyStopping(options: EarlyStoppingOptions = {}): EarlyStopping {
  const monitor = options.monitor ?? 'valLoss';
  const patience = options.patience ?? 0;
  const minDelta = options.minDelta ?? 0;
  if (typeof monitor !== 'string' || monitor.length === 0) throw new RsError('INVALID_ARGUMENT', 'earlyStopping: monitor must be a non-empty string.');
  if (!Number.isInteger(patience) || patience < 0) throw new RsError('INVALID_ARGUMENT', `earlyStopping: patience must be an integer >= 0, got ${String(options.patience)}.`);
  if (!(typeof minDelta === 'number' && Number.isFinite(minDelta) && minDelta >= 0)) throw new RsError('INVALID_ARGUMENT', `earlyStopping: minDelta must be a finite number >= 0, got ${String(options.minDelta)}.`);
  const mode = options.mode ?? (/accuracy/i.test(monitor) ? 'max' : 'min');
  if (mode !== 'min' && mode !== 'max') throw new RsError('INVALID_ARGUMENT', `earlyStopping: mode must be 'min' or 'max', got ${String(options.mode)}.`);
  let best = mode === 'min' ? Infinity : -Infinity;
  let bestEpoch = -1;
  let stoppedEpoch = -1;
  let wait = 0;
  let restored = false;
  let saved: Map<string, Tensor> | undefined;
  const release = (): void => {
    if (saved) for (const t of saved.values()) t.dispose();
    saved = undefined;
  };
  return {
    get bestEpoch() {
      return bestEpoch;
    },
    get best() {
      return best;
    },
    get stoppedEpoch() {
      return stoppedEpoch;
    },
    get restored() {
      return restored;
    },
    onTrainBegin() {
      best = mode === 'min' ? Infinity : -Infinity;
      bestEpoch = -1;
      stoppedEpoch = -1;
      wait = 0;
      restored = false;
      release();
    },
    onEpochEnd(info) {
      const value = monitored(info, monitor);
      if (value === undefined) {
        throw new RsError('INVALID_ARGUMENT', `earlyStopping monitors '${monitor}', which this fit does not report${monitor.startsWith('val') ? ' (give fit validation data)' : ''}. Known: loss${info.valLoss !== undefined ? ', valLoss, valAccuracy' : ''}${[...Object.keys(info.metrics), ...Object.keys(info.losses)].map((k) => `, ${k}`).join('')}.`);
      }
      const improved = mode === 'min' ? value < best - minDelta : value > best + minDelta;
      if (improved) {
        best = value;
        bestEpoch = info.epoch;
        wait = 0;
        if (options.restoreBestWeights) {
          release();
          saved = new Map(info.model.paramKeys().map((key) => [key, tf.keep(tf.clone(info.model.param(key).value))]));
        }
        return;
      }
      wait += 1;
      if (wait >= Math.max(patience, 1)) {
        stoppedEpoch = info.epoch;
        info.stop();
      }
    },
    onTrainEnd(info) {
      if (saved && !info.failed && bestEpoch !== info.epochs[info.epochs.length - 1]?.epoch) {
        const model = info.model;
        const fits = model.paramKeys().length === saved.size && model.paramKeys().every((k) => saved?.get(k)?.shape.join(',') === model.param(k).value.shape.join(','));
        if (fits) {
          model.setParamValues(saved);
          saved = undefined; // now owned by the model
          restored = true;
        }
      }
      release();
    },
  };
}

/**
 * A one-line progress bar on a terminal's stderr (epoch, batches, loss, ETA), redrawn in place;
 * silent when stderr is not a terminal (CI logs, browsers). `fit(..., { progress: true })` adds it.
 *
 * @example
 * await fit(model, data, { loss: 'softmaxCrossEntropy', epochs: 5, callbacks: [progressBar()] });
 */
export function progressBar(options: { stream?: { write(text: string): unknown; isTTY?: boolean; columns?: number } } = {}): Callback {
  const stream = options.stream ?? (globalThis as { process?: { stderr?: { write(text: string): unknown; isTTY?: boolean; columns?: number } } }).process?.stderr;
  const active = stream !== undefined && stream.isTTY === true;
  let epochs = 1;
  let started = 0;
  let lossSum = 0;
  let lossCount = 0;
  return {
    onTrainBegin(info) {
      epochs = info.epochs;
    },
    onBatchEnd(info) {
      if (!active) return;
      if (info.batch === 0) {
        started = Date.now();
        lossSum = 0;
        lossCount = 0;
      }
      lossSum += info.loss;
      lossCount += 1;
      const done = info.batch + 1;
      const width = 24;
      const filled = Math.round((width * done) / info.batches);
      const elapsed = (Date.now() - started) / 1000;
      const eta = done < info.batches ? ` eta ${Math.ceil((elapsed / done) * (info.batches - done))}s` : '';
      const line = `epoch ${info.epoch + 1}/${epochs} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${info.batches} loss ${(lossSum / lossCount).toFixed(4)}${eta}`;
      stream.write(`\r${line.slice(0, Math.max(20, (stream.columns ?? 100) - 1))}\x1b[K`);
    },
    onEpochEnd(info) {
      if (!active) return;
      const parts = [`epoch ${info.epoch + 1}/${epochs}`, `loss ${info.loss.toFixed(4)}`];
      if (info.valLoss !== undefined) parts.push(`val_loss ${info.valLoss.toFixed(4)}`, `val_acc ${(100 * (info.valAccuracy ?? 0)).toFixed(2)}%`);
      parts.push(`${info.seconds.toFixed(1)}s`);
      stream.write(`\r${parts.join('  ')}\x1b[K\n`);
    },
  };
}
