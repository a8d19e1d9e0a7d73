import { RsError, tf, type Model, type Tensor } from '@rs/core';
import { prunableParams } from './prune';

export interface LotteryOptions {
  /** Builds the network (same seed each call gives the same initialisation). */
  create: (seed: number) => Model;
  /** Trains the model in place (the optimizer state is reset before each call). */
  train: (model: Model) => Promise<void>;
  /** Test accuracy (or any score, higher is better). */
  evaluate: (model: Model) => number;
  /** Pruning rounds after the dense run. */
  rounds: number;
  /** Fraction of each parameter's remaining weights pruned per round (default 0.2). */
  rate?: number;
  /** Per-parameter rates (Frankle & Carbin: 0.1 for the output layer). */
  ratePerParam?: Record<string, number>;
  /** `init` rewinds to the initial weights; a function trains up to iteration k and then snapshots (late rewinding). */
  rewind?: 'init' | ((model: Model) => Promise<void>);
  /** Also train the random-reinitialisation control (same masks, fresh weights) each round. */
  control?: boolean;
  seed?: number;
  /** Called after every round with its row (for progress output). */
  onRound?: (row: LotteryRow) => void;
}

export interface LotteryRow {
  round: number;
  /** Fraction of prunable weights remaining. */
  remaining: number;
  accuracy: number;
  controlAccuracy?: number;
}

function snapshot(model: Model): Map<string, Tensor> {
  return new Map(model.paramKeys().map((k) => [k, tf.keep(tf.clone(model.param(k).value))]));
}

/**
 * Iterative magnitude pruning with rewinding (Frankle & Carbin 2019): train, prune `rate` of
 * the remaining weights of each layer by magnitude, rewind the survivors to their initial (or
 * iteration-k) values, repeat. The control trains the same masks from a fresh random init.
 *
 * @example
 * const table = await findLotteryTicket({ create, train, evaluate, rounds: 10, ratePerParam: { 'fc3/kernel': 0.1 } });
 */
export async function findLotteryTicket(options: LotteryOptions): Promise<{ rows: LotteryRow[]; model: Model }> {
  if (!(Number.isInteger(options.rounds) && options.rounds >= 1)) throw new RsError('INVALID_ARGUMENT', `rounds must be a positive integer, got ${options.rounds}.`);
  const rate = options.rate ?? 0.2;
  if (!(rate > 0 && rate < 1)) throw new RsError('INVALID_ARGUMENT', `rate must be in (0, 1), got ${rate}.`);
  const seed = options.seed ?? 0;
  const model = options.create(seed);
  if (typeof options.rewind === 'function') await options.rewind(model);
  const start = snapshot(model);
  const params = prunableParams(model);
  const total = params.reduce((n, k) => n + model.param(k).value.size, 0);
  const rows: LotteryRow[] = [];
  try {
    for (let round = 0; round <= options.rounds; round++) {
      model.resetOptimizerState();
      await options.train(model);
      const remaining = params.reduce((n, k) => n + (model.param(k).mask ? tf.tidy(() => tf.sum(model.param(k).mask as Tensor).dataSync()[0]) : model.param(k).value.size), 0) / total;
      const row: LotteryRow = { round, remaining, accuracy: options.evaluate(model) };
      if (options.control && round > 0) {
        const control = options.create(seed + 1000 + round);
        try {
          control.edit((tx) => {
            for (const k of params) tx.setMask(k, model.param(k).mask as Tensor);
          }, { technique: 'prune', reason: 'lottery control: same masks, random re-initialisation' });
          await options.train(control);
          row.controlAccuracy = options.evaluate(control);
        } finally {
          control.dispose();
        }
      }
      rows.push(row);
      options.onRound?.(row);
      if (round === options.rounds) break;
      // Prune `rate` of each layer's remaining weights by trained magnitude, then rewind.
      model.edit(
        (tx) => {
          for (const key of params) {
            const entry = model.param(key);
            const r = options.ratePerParam?.[key] ?? rate;
            const mask = tf.tidy(() => {
              const magnitude = tf.abs(entry.value);
              const alive = entry.mask ?? tf.onesLike(entry.value);
              const values = tf.where(tf.greater(alive, 0), magnitude, tf.fill(magnitude.shape, Infinity)).dataSync();
              const aliveCount = tf.sum(alive).dataSync()[0];
              const cut = Math.floor(r * aliveCount);
              const order = Array.from(values.keys()).sort((a, b) => values[a] - values[b]);
              const keep = new Float32Array(values.length).fill(1);
              const aliveValues = tf.tensor(alive.dataSync());
              const aliveFlags = aliveValues.dataSync();
              for (let i = 0; i < keep.length; i++) if (aliveFlags[i] === 0) keep[i] = 0;
              for (let i = 0; i < cut; i++) keep[order[i]] = 0;
              return tf.tensor(keep, entry.value.shape);
            });
            tx.setMask(key, mask);
            mask.dispose();
          }
          for (const [key, value] of start) tx.setParam(key, value);
        },
        { technique: 'prune', reason: `lottery ticket round ${round + 1}: prune ${rate * 100}% of remaining weights per layer, rewind` },
      );
    }
  } finally {
    for (const t of start.values()) t.dispose();
  }
  return { rows, model };
}
