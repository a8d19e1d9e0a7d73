import { RsError, computeGradients, disposeGradients, createRng, tf, type LossFn, type Model, type Tensor } from '@rs/core';
import { gateImportance } from './group-scores';
import { resolveLoss, type ImportanceScore as CoreImportanceScore, type ScoreBatch as CoreScoreBatch, type ScoreContext as CoreScoreContext } from '@rs/core/extend';

/**
 * A batch of data, the context of a score and the score itself are @rs/core's structural types
 * (extension point `'score'`), so a technique can provide a score through its registry without
 * depending on this package; these aliases keep their names here.
 */
export type ScoreBatch = CoreScoreBatch;
/** What a score needs besides the model (batches for data-driven scores, a loss, a seed). */
export type ScoreContext = CoreScoreContext;
/**
 * An importance score: a non-negative value per weight of each requested parameter (same
 * shape). Higher means more important. Scores are plugins: register your own in a registry, or
 * provide one from a technique's `register(registry)` as `registry.provide('score', name, score)`.
 */
export type ImportanceScore = CoreImportanceScore;

/** The parameter as a forward pass sees it (masked), as a new tensor the caller owns. */
function masked(model: Model, key: string): Tensor {
  return tf.tidy(() => tf.clone(model.forwardParams({ keys: [key] }).get(key) as Tensor));
}

/**
 * |w| (L1 magnitude; Han et al. 2015).
 *
 * @example
 * pruneWeights(model, { sparsity: 0.9, score: 'l1' });
 */
export const l1: ImportanceScore = {
  name: 'l1',
  needsData: false,
  weights: (model, params) => new Map(params.map((k) => [k, tf.tidy(() => tf.abs(masked(model, k)))])),
};

/**
 * w^2 (L2 magnitude; for groups, the sum is the squared L2 norm of the unit's coupled weights).
 *
 * @example
 * pruneUnits(model, { fraction: 0.5, score: 'l2', groups: ['conv2'] });
 */
export const l2: ImportanceScore = {
  name: 'l2',
  needsData: false,
  weights: (model, params) => new Map(params.map((k) => [k, tf.tidy(() => tf.square(masked(model, k)))])),
};

export function needBatches(context: ScoreContext, name: string): ScoreBatch[] {
  if (!context.batches || context.batches.length === 0) {
    throw new RsError('INVALID_ARGUMENT', `Score '${name}' needs data: pass { batches: [{ x, y }] } (and a loss, default softmaxCrossEntropy).`);
  }
  return context.batches;
}

function gradientTimesWeight(model: Model, params: string[], batches: ScoreBatch[], loss: LossFn, signed = false): Map<string, Tensor> {
  const sums = new Map<string, Tensor>();
  try {
    for (const batch of batches) {
      const xs = Array.isArray(batch.x) ? batch.x : [batch.x];
      const g = computeGradients(model, xs, batch.y, loss, { params, training: false });
      try {
        for (const key of params) {
          const term = tf.tidy(() => {
            const product = tf.mul(g.grads.get(key) as Tensor, masked(model, key));
            return signed ? product : tf.abs(product);
          });
          const previous = sums.get(key);
          sums.set(key, previous ? tf.tidy(() => tf.add(previous, term)) : term);
          if (previous) {
            previous.dispose();
            term.dispose();
          }
        }
      } finally {
        disposeGradients(g);
      }
    }
  } catch (error) {
    // A later batch that fails (bad shapes, a throwing loss) must not strand the sums so far.
    for (const t of sums.values()) t.dispose();
    throw error;
  }
  return sums;
}

/**
 * Runs `score.weights` and checks what it returned: a tensor of the parameter's shape for every
 * requested parameter (a third-party score that forgets one or returns another shape gets a
 * typed error instead of a TypeError or a wrong ranking). On any error the tensors are disposed.
 */
export function scoreWeights(score: ImportanceScore, model: Model, params: string[], context: ScoreContext): Map<string, Tensor> {
  const weights = score.weights(model, params, context);
  try {
    if (!(weights instanceof Map)) throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' must return a Map from parameter key to tensor.`, { score: score.name });
    for (const key of params) {
      const t = weights.get(key);
      const expected = model.param(key).value.shape;
      if (!t) throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' returned no tensor for '${key}'.`, { score: score.name, param: key });
      if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
        throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' returned shape [${t.shape.join(', ')}] for '${key}', whose shape is [${expected.join(', ')}].`, { score: score.name, param: key, shape: t.shape, expected });
      }
    }
  } catch (error) {
    if (weights instanceof Map) for (const t of weights.values()) t?.dispose?.();
    throw error;
  }
  return weights;
}

/**
 * First-order Taylor importance |w * dL/dw| accumulated over batches (Molchanov et al. 2017/2019).
 *
 * @example
 * pruneUnits(model, { fraction: 0.25, score: 'taylor', context: { batches: [{ x, y }, { x: x2, y: y2 }] } });
 */
export const taylor: ImportanceScore = {
  name: 'taylor',
  needsData: true,
  weights: (model, params, context) => gradientTimesWeight(model, params, needBatches(context, 'taylor'), resolveLoss(context.loss ?? 'softmaxCrossEntropy')),
};

/**
 * First-order Taylor estimate for groups (Molchanov et al. 2019): signed w * dL/dw summed over
 * batches; a unit's importance is |sum over its coupled weights|, the first-order change of the
 * loss when the whole unit (a neuron, a channel, an attention head) is removed.
 *
 * @example
 * pruneUnits(model, { fraction: 0.5, score: 'taylorGroup', groups: ['block0.attn:heads'], context: { batches } });
 */
export const taylorGroup: ImportanceScore = {
  name: 'taylorGroup',
  needsData: true,
  signed: true,
  weights: (model, params, context) => gradientTimesWeight(model, params, needBatches(context, 'taylorGroup'), resolveLoss(context.loss ?? 'softmaxCrossEntropy'), true),
};

/**
 * SNIP connection sensitivity |g * w| on one batch at initialisation (Lee et al. 2019),
 * normalised to sum to 1 over the scored parameters.
 *
 * @example
 * pruneWeights(freshModel, { sparsity: 0.95, score: 'snip', scope: 'global', context: { batches: [{ x, y }] } });
 */
export const snip: ImportanceScore = {
  name: 'snip',
  needsData: true,
  weights: (model, params, context) => {
    const [first] = needBatches(context, 'snip');
    const raw = gradientTimesWeight(model, params, [first], resolveLoss(context.loss ?? 'softmaxCrossEntropy'));
    const total = tf.tidy(() => tf.addN([...raw.values()].map((t) => tf.sum(t))).dataSync()[0]) || 1;
    return new Map([...raw].map(([k, t]) => {
      const normalised = tf.div(t, total);
      t.dispose();
      return [k, normalised];
    }));
  },
};

/**
 * Uniform random scores in [0, 1) (the control every score should beat), seeded by `context.seed`.
 *
 * @example
 * pruneUnits(model, { fraction: 0.5, score: 'random', context: { seed: 1 } });
 */
export const random: ImportanceScore = {
  name: 'random',
  needsData: false,
  weights: (model, params, context) => {
    const rng = createRng(context.seed ?? 0);
    return new Map(params.map((k) => [k, tf.tidy(() => tf.randomUniform(model.param(k).value.shape, 0, 1, 'float32', rng.seed()))]));
  },
};

/**
 * Gate importance (Michel et al. 2019), a unit-level score: `E |dL/d xi_u|` for a gate on each
 * unit's output, from the unit's reader weights, per batch then averaged
 * (see {@link gateImportance}). It scores whole units (`pruneUnits`, `groupUnitScores`); it has
 * no per-weight values, so `pruneWeights` refuses it.
 *
 * @example
 * pruneUnits(model, { fraction: 0.25, score: 'gate', groups: ['block0.attn:heads'], context: { batches } });
 */
export const gate: ImportanceScore = {
  name: 'gate',
  needsData: true,
  weights: () => {
    throw new RsError('INVALID_ARGUMENT', "Score 'gate' scores whole units (pruneUnits, groupUnitScores), not single weights; for weights use 'taylor'.", { score: 'gate' });
  },
  units: (model, groups, context) => gateImportance(model, groups, context),
};

/**
 * Scores by name. `register` adds a third-party score; a duplicate name is an error unless
 * `{ override: true }`.
 *
 * @example
 * const scores = createScoreRegistry().register(myScore);
 * pruneWeights(model, { sparsity: 0.9, score: 'mine', scores });
 */
export class ScoreRegistry {
  private readonly table = new Map<string, ImportanceScore>();

  register(score: ImportanceScore, options: { override?: boolean } = {}): this {
    if (!score || typeof score.name !== 'string' || typeof score.weights !== 'function') {
      throw new RsError('INVALID_ARGUMENT', 'A score needs a `name` and a `weights(model, params, context)` function.');
    }
    if (this.table.has(score.name) && !options.override) {
      throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' is already registered; pass { override: true } to replace it.`);
    }
    this.table.set(score.name, score);
    return this;
  }

  get(name: string | ImportanceScore): ImportanceScore {
    if (typeof name !== 'string') {
      if (!name || typeof name.weights !== 'function') throw new RsError('INVALID_ARGUMENT', 'A score is a registered name or an object with `name` and `weights(model, params, context)`.');
      return name;
    }
    const score = this.table.get(name);
    if (!score) throw new RsError('INVALID_ARGUMENT', `Unknown score '${name}'. Registered: ${[...this.table.keys()].join(', ')}.`, { score: name });
    return score;
  }

  /** Whether a score is registered under `name`. */
  has(name: string): boolean {
    return this.table.has(name);
  }

  names(): string[] {
    return [...this.table.keys()];
  }
}

/**
 * A registry with the built-in scores l1, l2, taylor, taylorGroup, gate, snip, random.
 *
 * @example
 * const scores = createScoreRegistry().register(myScore);
 */
export function createScoreRegistry(): ScoreRegistry {
  return new ScoreRegistry().register(l1).register(l2).register(taylor).register(taylorGroup).register(gate).register(snip).register(random);
}

/**
 * The registry used when none is given (built-ins; registering here reaches every call).
 *
 * @example
 * defaultScores.names(); // ['l1', 'l2', 'taylor', 'taylorGroup', 'gate', 'snip', 'random']
 */
export const defaultScores = createScoreRegistry();
