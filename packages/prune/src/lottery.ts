import { RsError, splitParamKey, tf, type Model, type Tensor } from '@rs/core';
import { prunableParams } from './prune';
import { readValues } from './read';

/** Options of `findLotteryTicket`: how to build, train and evaluate the network, and the pruning rates. */
export interface LotteryOptions {
  /** Builds the network (same seed each call gives the same initialisation). */
  create: (seed: number) => Model;
  /** Trains the model in place (the optimizer state is reset before each call). */
  train: (model: Model) => Promise<void>;
  /** Test accuracy (or any score, higher is better). */
  evaluate: (model: Model) => number;
  /** Pruning rounds after the dense run. */
  rounds: number;
  /** Fraction of each hidden layer's remaining weights pruned per round (default 0.2, Frankle & Carbin). */
  rate?: number;
  /** Rate for the weights of nodes that produce a graph output (default `rate / 2`: 0.1, Frankle & Carbin). */
  outputRate?: number;
  /** Per-parameter rates, overriding `rate` and `outputRate`. */
  ratePerParam?: Record<string, number>;
  /** `init` rewinds to the initial weights; a function trains up to iteration k and then snapshots (late rewinding). */
  rewind?: 'init' | ((model: Model) => Promise<void>);
  /** Also train the random-reinitialisation control (same masks, fresh weights) each round. */
  control?: boolean;
  seed?: number;
  /** Called after every round with its row (for progress output). */
  onRound?: (row: LotteryRow) => void;
}

/** One round of `findLotteryTicket`: the ticket's and the control's accuracy at a sparsity. */
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

function checkRate(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value < 1)) throw new RsError('INVALID_ARGUMENT', `${name} must be in (0, 1), got ${String(value)}.`, { [name]: value });
  return value;
}

/** Keeps the alive weights of `value` (under `mask`) except the `rate` fraction of smallest magnitude. */
function nextMask(value: Tensor, mask: Tensor | undefined, rate: number): Float32Array {
  const magnitude = readValues(() => tf.abs(value));
  const keep = mask ? Float32Array.from(mask.dataSync()) : new Float32Array(magnitude.length).fill(1);
  const alive: number[] = [];
  for (let i = 0; i < keep.length; i++) if (keep[i] !== 0) alive.push(i);
  alive.sort((a, b) => magnitude[a] - magnitude[b] || a - b);
  const cut = Math.min(Math.floor(rate * alive.length), alive.length - 1);
  for (let i = 0; i < cut; i++) keep[alive[i]] = 0;
  return keep;
}

/**
 * Iterative magnitude pruning with rewinding (Frankle & Carbin 2019): train, prune `rate` of
 * the remaining weights of each layer by magnitude, rewind the survivors to their initial (or
 * iteration-k) values, repeat. The control trains the same masks from a fresh random init.
 *
 * @example
 * // 20% of hidden-layer and 10% of output-layer weights per round: 10.7% of hidden weights left after 10 rounds.
 * const { rows, model } = await findLotteryTicket({ create: (seed) => Model.create(lenet300100(), { seed }), train, evaluate, rounds: 10, control: true });
 */
export async function findLotteryTicket(options: LotteryOptions): Promise<{ rows: LotteryRow[]; model: Model }> {
  if (!(Number.isInteger(options.rounds) && options.rounds >= 1)) throw new RsError('INVALID_ARGUMENT', `rounds must be a positive integer, got ${options.rounds}.`);
  const rate = checkRate('rate', options.rate ?? 0.2);
  const outputRate = checkRate('outputRate', options.outputRate ?? rate / 2);
  for (const [key, value] of Object.entries(options.ratePerParam ?? {})) checkRate(`ratePerParam['${key}']`, value);
  if (options.rewind !== undefined && options.rewind !== 'init' && typeof options.rewind !== 'function') {
    throw new RsError('INVALID_ARGUMENT', `rewind must be 'init' or a function that trains to iteration k, got ${String(options.rewind)}.`);
  }
  const seed = options.seed ?? 0;
  const model = options.create(seed);
  let start: Map<string, Tensor> = new Map();
  try {
    if (typeof options.rewind === 'function') await options.rewind(model);
    start = snapshot(model);
  } catch (error) {
    model.dispose();
    throw error;
  }
  const params = prunableParams(model);
  const outputs = new Set(model.graph.outputs);
  const rates = new Map(params.map((k) => [k, options.ratePerParam?.[k] ?? (outputs.has(splitParamKey(k)[0]) ? outputRate : rate)]));
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
            const mask = tf.tensor(nextMask(entry.value, entry.mask, rates.get(key) as number), entry.value.shape);
            try {
              tx.setMask(key, mask);
            } finally {
              mask.dispose();
            }
          }
          for (const [key, value] of start) tx.setParam(key, value);
        },
        { technique: 'prune', reason: `lottery ticket round ${round + 1}: prune ${rate * 100}% of each layer's remaining weights (output ${outputRate * 100}%), rewind to ${options.rewind === undefined || options.rewind === 'init' ? 'initialisation' : 'iteration k'}`, details: { round: round + 1, rates: Object.fromEntries(rates) } },
      );
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    for (const t of start.values()) t.dispose();
  }
  return { rows, model };
}
