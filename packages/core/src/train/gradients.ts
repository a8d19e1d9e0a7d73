import { tf, type Tensor } from '../tf';
import { RsError } from '../errors';
import type { Model } from '../model';
import { execute, type RunOptions, type Taps } from '../exec/executor';
import type { Rng } from '../ops/schema';
import type { LossFn } from './losses';
import type { Optimizer } from './optimizers';
import { valueAndGrads } from './tape';

/** Loss and gradients, plus everything the forward passes reported. Dispose with `disposeGradients`. */
export interface Gradients {
  /** The objective plus every auxiliary loss that ops added. */
  loss: number;
  /** dLoss/dParam for the differentiated parameters that the objective reaches. */
  grads: Map<string, Tensor>;
  /** Activations and dLoss/dActivation of tapped nodes. */
  activations: Map<string, Tensor>;
  activationGrads: Map<string, Tensor>;
  /** Auxiliary losses (`node/name`) and metrics that ops reported. */
  losses: Record<string, number>;
  metrics: Record<string, number>;
  /** New `state` param values (batchNorm statistics) from training-mode passes. */
  state: Map<string, Tensor>;
}

/** Options of one run inside a {@link ForwardPass}: the executor's options without the parameters. */
export type PassRunOptions = Pick<RunOptions, 'targets' | 'alias' | 'intercept' | 'values' | 'taps'> & {
  /** Overrides the pass's mode for this run. */
  training?: boolean;
};

/**
 * The forward passes of one gradient computation: `run` executes the model with the parameters
 * being differentiated (masked, through `Model.forwardParams`), and collects what ops report:
 * auxiliary losses are added to the objective, batch statistics are returned as `state`.
 */
export interface ForwardPass {
  /** The parameters every run uses (read them to build an objective of your own). */
  readonly params: Map<string, Tensor>;
  /** Runs the model and returns the values of `targets` (default: the graph's outputs). */
  run(feeds: Tensor | Tensor[], options?: PassRunOptions): Tensor[];
}

export interface GradientsOfOptions {
  /** Parameters to differentiate; default: every trainable one. Those the objective does not reach get no gradient. */
  params?: string[];
  /** Taps recorded by every run of the pass. */
  taps?: Taps;
  /** Forward in training mode (dropout, batch statistics). Default true. */
  training?: boolean;
  rng?: Rng;
  /** Transforms each masked parameter before use (see `Model.forwardParams`). */
  substitute?: (key: string, value: Tensor) => Tensor;
}

/**
 * The one gradient computation of the library: differentiates `objective`, which runs the model
 * through `pass.run` (any number of times, with any targets, aliases or intercepts), with respect
 * to the model's parameters. Auxiliary losses of every run are always added to the objective.
 * Nothing is updated. When it throws, nothing is left behind.
 *
 * @example
 * const g = gradientsOf(model, (pass) => softmaxCrossEntropy(pass.run(x, { alias })[0], y));
 * disposeGradients(g);
 */
export function gradientsOf(model: Model, objective: (pass: ForwardPass) => Tensor, options: GradientsOfOptions = {}): Gradients {
  const keys = options.params ?? model.paramKeys().filter((k) => model.param(k).trainable);
  const aux: Record<string, number> = {};
  const metrics: Record<string, number> = {};
  const sink = { activations: new Map<string, Tensor>(), gradients: new Map<string, Tensor>() };
  const state = new Map<string, Tensor>();
  const training = options.training ?? true;
  const rng = options.rng ?? model.rng;
  let out: { value: Tensor; grads: (Tensor | undefined)[] };
  try {
    out = tf.tidy(() =>
      valueAndGrads((...args: Tensor[]) => {
        const params = model.forwardParams({ overrides: new Map(keys.map((k, i) => [k, args[i]])), substitute: options.substitute });
        const losses: Tensor[] = [];
        const pass: ForwardPass = {
          params,
          run(feeds, runOptions = {}) {
            const { training: mode, ...rest } = runOptions;
            const result = execute(model.plan, Array.isArray(feeds) ? feeds : [feeds], params, {
              training: mode ?? training,
              rng,
              taps: options.taps,
              tapSink: sink,
              ...rest,
            });
            for (const [key, t] of result.state) {
              state.get(key)?.dispose();
              state.set(key, t);
            }
            for (const [name, l] of result.losses) {
              losses.push(l);
              aux[name] = (aux[name] ?? 0) + l.dataSync()[0];
            }
            for (const [name, m] of result.metrics) metrics[name] = m.dataSync()[0];
            return result.outputs;
          },
        };
        let total = objective(pass);
        if (!(total instanceof tf.Tensor) || total.rank !== 0) {
          throw new RsError('INVALID_ARGUMENT', `The objective must return a scalar tensor, got ${total instanceof tf.Tensor ? `shape [${total.shape.join(', ')}]` : typeof total}.`);
        }
        for (const l of losses) total = tf.add(total, l);
        return total;
      }, keys.map((k) => model.param(k).value)),
    );
  } catch (error) {
    // Taps and new batch statistics are kept outside the scope: release them too.
    for (const map of [sink.activations, sink.gradients, state]) for (const t of map.values()) t.dispose();
    throw error;
  }
  const loss = out.value.dataSync()[0];
  out.value.dispose();
  const grads = new Map<string, Tensor>();
  keys.forEach((k, i) => {
    const g = out.grads[i];
    if (g) grads.set(k, g);
  });
  return { loss, grads, activations: sink.activations, activationGrads: sink.gradients, losses: aux, metrics, state };
}

/** Disposes every tensor of a `Gradients` result. */
export function disposeGradients(g: Gradients): void {
  for (const map of [g.grads, g.activations, g.activationGrads, g.state]) for (const t of map.values()) t.dispose();
}

export interface ObjectiveStepOptions extends GradientsOfOptions {
  /** Which new `state` values (batch statistics) to write back; default all (frozen columns say no to theirs). */
  ownsState?: (key: string) => boolean;
}

/** What one optimisation step reports. */
export interface StepResult {
  loss: number;
  losses: Record<string, number>;
  metrics: Record<string, number>;
}

/**
 * The one training step of the library: gradients of `objective` (auxiliary losses included),
 * one optimizer update, new batch statistics written back. A loss that is NaN or infinite raises
 * `NON_FINITE` before anything changes. Every training loop (fit, LayerDrop, early-exit and
 * slimmable training, progressive columns, DARTS) ends here.
 *
 * @example
 * objectiveStep(model, optimizer, (pass) => softmaxCrossEntropy(pass.run(x, { alias })[0], y), { rng });
 */
export function objectiveStep(model: Model, optimizer: Optimizer, objective: (pass: ForwardPass) => Tensor, options: ObjectiveStepOptions = {}): StepResult {
  const g = gradientsOf(model, objective, options);
  try {
    if (!Number.isFinite(g.loss)) {
      throw new RsError('NON_FINITE', `The loss became ${String(g.loss)} at update ${model.optimizerStep + 1}; the model was left as it was before this update. Lower the learning rate, check the data for extreme values, or clip gradients.`, {
        loss: g.loss,
        update: model.optimizerStep + 1,
        losses: g.losses,
      });
    }
    optimizer.step(model, g.grads);
  } catch (error) {
    disposeGradients(g);
    throw error;
  }
  for (const map of [g.grads, g.activations, g.activationGrads]) for (const t of map.values()) t.dispose();
  const owned = new Map<string, Tensor>();
  for (const [key, t] of g.state) {
    if (!options.ownsState || options.ownsState(key)) owned.set(key, t);
    else t.dispose();
  }
  if (owned.size > 0) model.setParamValues(owned);
  return { loss: g.loss, losses: g.losses, metrics: g.metrics };
}

export interface GradientOptions {
  /** Parameters to differentiate; default: every trainable one. */
  params?: string[];
  taps?: Taps;
  /** Forward in training mode (dropout, batch statistics). Default true. */
  training?: boolean;
  rng?: Rng;
}

/**
 * Loss and gradients on one batch, without updating anything. Scores such as first-order
 * Taylor importance and GradMax growth use this.
 *
 * @example
 * const g = computeGradients(model, [x], y, softmaxCrossEntropy, { taps: { gradients: ['fc1'] } });
 * g.grads.get('fc1/kernel'); g.activationGrads.get('fc1');
 * disposeGradients(g);
 */
export function computeGradients(model: Model, xs: Tensor[], y: Tensor, lossFn: LossFn, options: GradientOptions = {}): Gradients {
  return gradientsOf(model, (pass) => lossFn(pass.run(xs)[0], y), options);
}

/**
 * One optimisation step on a batch. Returns the total loss and the parts it was made of.
 * Exposed for techniques that drive training themselves.
 */
export function trainStep(model: Model, xs: Tensor[], y: Tensor, lossFn: LossFn, optimizer: Optimizer, rng: Rng = model.rng): StepResult {
  return objectiveStep(model, optimizer, (pass) => lossFn(pass.run(xs)[0], y), { rng });
}
