import { tf, type Tensor } from '../tf';
import { RsError } from '../errors';
import type { Model } from '../model';

/**
 * Updates parameters from gradients. State lives in the model's optimizer slots, so it follows
 * structural edits (moments of removed units go, inserted units start at zero).
 */
export interface Optimizer {
  readonly name: string;
  /** Applies one update; `grads` are owned by the caller. */
  step(model: Model, grads: Map<string, Tensor>): void;
  /** Hyper-parameters, for logs and the journal. */
  config(): Record<string, number | string>;
}

/**
 * A learning rate that changes over training: called with the 1-based number of the update
 * about to be applied, returns the learning rate for it (finite, >= 0).
 */
export type LearningRateSchedule = (step: number) => number;

/**
 * Cosine decay (Loshchilov & Hutter 2017, without restarts): from `initial` at the first update
 * to `final` (default 0) at update `steps`, then `final`; optional linear warm-up over the
 * first `warmup` updates.
 *
 * @example
 * const optimizer = adam({ learningRate: cosineDecay({ initial: 2e-3, steps: 1100 }) });
 */
export function cosineDecay(options: { initial: number; steps: number; final?: number; warmup?: number }): LearningRateSchedule {
  const initial = positive('initial', options.initial);
  const final = positive('final', options.final ?? 0);
  const warmup = options.warmup ?? 0;
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new RsError('INVALID_ARGUMENT', `cosineDecay: steps must be a positive integer, got ${String(options.steps)}.`);
  if (!Number.isInteger(warmup) || warmup < 0 || warmup >= options.steps) throw new RsError('INVALID_ARGUMENT', `cosineDecay: warmup must be an integer in [0, steps), got ${String(options.warmup)}.`);
  const steps = options.steps;
  return (step) => {
    if (step <= warmup) return (initial * step) / warmup;
    if (step >= steps) return final;
    const progress = (step - 1 - warmup) / Math.max(1, steps - 1 - warmup);
    return final + 0.5 * (initial - final) * (1 + Math.cos(Math.PI * progress));
  };
}

/** A constant or a schedule, checked; returns the rate for each update. */
function learningRateOf(value: number | LearningRateSchedule | undefined, fallback: number): { at: (step: number) => number; describe: number | string } {
  if (typeof value === 'function') {
    return {
      at: (step) => {
        const rate = value(step);
        if (!(typeof rate === 'number' && rate >= 0 && Number.isFinite(rate))) throw new RsError('INVALID_ARGUMENT', `the learning-rate schedule returned ${String(rate)} at step ${step}; expected a finite number >= 0.`, { step });
        return rate;
      },
      describe: 'schedule',
    };
  }
  const rate = positive('learningRate', value ?? fallback);
  return { at: () => rate, describe: rate };
}

export interface AdamOptions {
  /** A number, or a {@link LearningRateSchedule} (e.g. {@link cosineDecay}). Default 1e-3. */
  learningRate?: number | LearningRateSchedule;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (AdamW). Default 0. */
  weightDecay?: number;
}

function positive(name: string, value: number): number {
  if (!(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
    throw new RsError('INVALID_ARGUMENT', `${name} must be a finite non-negative number, got ${String(value)}.`);
  }
  return value;
}

function update(model: Model, key: string, compute: (value: Tensor) => Tensor): Tensor {
  const entry = model.param(key);
  return tf.tidy(() => {
    const next = compute(entry.value);
    return entry.mask ? tf.mul(next, entry.mask) : next;
  });
}

/**
 * Adam (Kingma & Ba 2015), optionally with decoupled weight decay.
 *
 * @example
 * await fit(model, data, { optimizer: adam({ learningRate: 1e-3 }), loss: 'softmaxCrossEntropy' });
 */
export function adam(options: AdamOptions = {}): Optimizer {
  const rate = learningRateOf(options.learningRate, 1e-3);
  const beta1 = positive('beta1', options.beta1 ?? 0.9);
  const beta2 = positive('beta2', options.beta2 ?? 0.999);
  const epsilon = positive('epsilon', options.epsilon ?? 1e-8);
  const weightDecay = positive('weightDecay', options.weightDecay ?? 0);
  let t = 0;
  return {
    name: 'adam',
    config: () => ({ learningRate: rate.describe, beta1, beta2, epsilon, weightDecay }),
    step(model, grads) {
      const lr = rate.at(t + 1);
      t += 1;
      const c1 = 1 - beta1 ** t;
      const c2 = 1 - beta2 ** t;
      const values = new Map<string, Tensor>();
      for (const [key, g] of grads) {
        const slots = model.slots(key);
        const m0 = slots.get('m') ?? tf.keep(tf.zerosLike(g));
        const v0 = slots.get('v') ?? tf.keep(tf.zerosLike(g));
        const m = tf.keep(tf.tidy(() => tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1))));
        const v = tf.keep(tf.tidy(() => tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2))));
        values.set(
          key,
          tf.keep(
            update(model, key, (p) => {
              const step = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
              const decayed = weightDecay > 0 ? tf.sub(p, tf.mul(p, lr * weightDecay)) : p;
              return tf.sub(decayed, tf.mul(step, lr));
            }),
          ),
        );
        m0.dispose();
        v0.dispose();
        slots.set('m', m);
        slots.set('v', v);
      }
      model.setParamValues(values);
    },
  };
}

export interface SgdOptions {
  /** A number, or a {@link LearningRateSchedule} (e.g. {@link cosineDecay}). Default 0.01. */
  learningRate?: number | LearningRateSchedule;
  momentum?: number;
}

/**
 * Stochastic gradient descent, with optional (heavy-ball) momentum.
 *
 * @example
 * const optimizer = sgd({ learningRate: 0.1, momentum: 0.9 });
 */
export function sgd(options: SgdOptions = {}): Optimizer {
  const rate = learningRateOf(options.learningRate, 0.01);
  const momentum = positive('momentum', options.momentum ?? 0);
  let t = 0;
  return {
    name: 'sgd',
    config: () => ({ learningRate: rate.describe, momentum }),
    step(model, grads) {
      const lr = rate.at(t + 1);
      t += 1;
      const values = new Map<string, Tensor>();
      for (const [key, g] of grads) {
        let direction = g;
        if (momentum > 0) {
          const slots = model.slots(key);
          const previous = slots.get('velocity');
          const velocity = tf.keep(tf.tidy(() => (previous ? tf.add(tf.mul(previous, momentum), g) : tf.clone(g))));
          previous?.dispose();
          slots.set('velocity', velocity);
          direction = velocity;
        }
        values.set(key, tf.keep(update(model, key, (p) => tf.sub(p, tf.mul(direction, lr)))));
      }
      model.setParamValues(values);
    },
  };
}
