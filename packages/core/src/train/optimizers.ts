import { tf, type Tensor } from '../tf';
import { RsError } from '../errors';
import type { Model } from '../model';
import { applyMask } from '../ir/mask';
import { backendHasKernel } from '../backend';

/**
 * Updates parameters from gradients. All state lives in the model: per-parameter slots that
 * follow structural edits (moments of removed units go, inserted units start at zero) and the
 * step count (`model.optimizerStep`). An optimizer object holds only hyper-parameters, so a
 * fresh one continues where the model's state left off (call `model.resetOptimizerState()` to
 * start over), and a model saved with `includeOptimizerState` resumes bit-identically.
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
 * about to be applied (one more than the most updates any of the updated parameters has had),
 * returns the learning rate for it (finite, >= 0).
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

/**
 * The kernel a backend may register to run one whole Adam update of a parameter in one call
 * (inputs `p`, `g`, `m`, `v`, float32 of one shape; attrs `learningRate`, `beta1`, `beta2`,
 * `oneMinusBeta1`, `oneMinusBeta2`, `c1`, `c2`, `epsilon`, `decay` = learningRate * weightDecay;
 * outputs the new `[p, m, v]`, computed in the order of the formula below). Without it, the
 * update is the sequence of tfjs ops below. @rs/backend-native and @rs/backend-wasm register one.
 */
export const ADAM_UPDATE_KERNEL = 'RsAdamUpdate';

/** The number of the update about to be applied to these parameters (1-based; schedules read it). */
function nextStep(model: Model, grads: Map<string, Tensor>): number {
  let most = 0;
  for (const key of grads.keys()) most = Math.max(most, model.optimizerStepOf(key));
  return most + 1;
}

/**
 * Computes one update for every parameter in `grads` and commits it to the model atomically:
 * if anything throws (an unknown key, a gradient of the wrong shape, a schedule's bad value),
 * the new tensors are released and the model keeps its values, slots and step count.
 * `compute` runs inside a tidy scope and returns the new (unmasked) value and slots.
 */
function applyUpdate(
  model: Model,
  grads: Map<string, Tensor>,
  compute: (key: string, value: Tensor, grad: Tensor, slots: ReadonlyMap<string, Tensor>) => { value: Tensor; slots: Record<string, Tensor> },
): void {
  const values = new Map<string, Tensor>();
  const slots = new Map<string, Map<string, Tensor>>();
  try {
    for (const [key, g] of grads) {
      const entry = model.param(key);
      if (g.shape.join(',') !== entry.value.shape.join(',')) {
        throw new RsError('SHAPE_MISMATCH', `The gradient of '${key}' has shape [${g.shape.join(', ')}] but the parameter has [${entry.value.shape.join(', ')}].`, { param: key });
      }
      const next = tf.tidy(() => {
        const out = compute(key, entry.value, g, model.optimizerSlots(key));
        const value = applyMask(out.value, entry.mask);
        return { value, ...out.slots } as Record<string, Tensor>;
      });
      const { value, ...rest } = next;
      values.set(key, tf.keep(value));
      slots.set(key, new Map(Object.entries(rest).map(([name, t]) => [name, tf.keep(t)])));
    }
    // Refuses (before changing anything) inside an edit callback or for a disposed model.
    model.commitOptimizerUpdate(values, slots);
  } catch (error) {
    for (const t of values.values()) t.dispose();
    for (const map of slots.values()) for (const t of map.values()) t.dispose();
    throw error;
  }
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
  return {
    name: 'adam',
    config: () => ({ learningRate: rate.describe, beta1, beta2, epsilon, weightDecay }),
    step(model, grads) {
      // Step counts live in the model (per parameter, saved with its optimizer state), not in
      // this object; the bias correction uses each parameter's own count, as PyTorch does.
      const lr = rate.at(nextStep(model, grads));
      applyUpdate(model, grads, (key, p, g, slots) => {
        const t = model.optimizerStepOf(key) + 1;
        const c1 = 1 - beta1 ** t;
        const c2 = 1 - beta2 ** t;
        const m0 = slots.get('m');
        const v0 = slots.get('v');
        if (p.dtype === 'float32' && g.dtype === 'float32' && backendHasKernel(ADAM_UPDATE_KERNEL)) {
          // m0 = v0 = 0 on the first update gives exactly the values of the branch below.
          const attrs = { learningRate: lr, beta1, beta2, oneMinusBeta1: 1 - beta1, oneMinusBeta2: 1 - beta2, c1, c2, epsilon, decay: lr * weightDecay };
          const inputs = { p, g, m: m0 ?? tf.zerosLike(p), v: v0 ?? tf.zerosLike(p) };
          const [value, m, v] = tf.engine().runKernel(ADAM_UPDATE_KERNEL, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as unknown as Tensor[];
          return { value, slots: { m, v } };
        }
        const m = m0 ? tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1)) : tf.mul(g, 1 - beta1);
        const v = v0 ? tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2)) : tf.mul(tf.square(g), 1 - beta2);
        const step = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        const decayed = weightDecay > 0 ? tf.sub(p, tf.mul(p, lr * weightDecay)) : p;
        return { value: tf.sub(decayed, tf.mul(step, lr)), slots: { m, v } };
      });
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
  return {
    name: 'sgd',
    config: () => ({ learningRate: rate.describe, momentum }),
    step(model, grads) {
      const lr = rate.at(nextStep(model, grads));
      applyUpdate(model, grads, (_key, p, g, slots): { value: Tensor; slots: Record<string, Tensor> } => {
        if (momentum === 0) return { value: tf.sub(p, tf.mul(g, lr)), slots: {} };
        const previous = slots.get('velocity');
        const velocity = previous ? tf.add(tf.mul(previous, momentum), g) : tf.clone(g);
        return { value: tf.sub(p, tf.mul(velocity, lr)), slots: { velocity } };
      });
    },
  };
}
