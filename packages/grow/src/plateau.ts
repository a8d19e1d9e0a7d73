import { RsError, computeGradients, disposeGradients, tf, type Callback, type EpochInfo, type Model, type Tensor } from '@rs/core';
import { resolveLoss } from '@rs/core/extend';
import { growGradMax } from './gradmax';
import { widen, checkCount, checkChoice, SPLITS, OPTIMIZER_STATES } from './net2net';

/** A limit on growth: total units added, parameters, or FLOPs per sample of the model. */
export interface GrowthBudget {
  units?: number;
  params?: number;
  flops?: number;
}

export interface PlateauOptions {
  /** Groups that may grow (dense groups for GradMax). */
  groups: string[];
  /** Units added per growth step (default 16), or per group (`{ fc1: 64, fc2: 32 }`). */
  step?: number | Record<string, number>;
  /** Largest size of each listed group: a step is cut to reach it exactly, a group at it no longer grows. */
  maxSize?: Record<string, number>;
  /**
   * Which groups grow at a plateau: `score` (default) the one with the largest gradient norm per
   * unit that fits the budget; `all` every group below its `maxSize` that fits (uniform widening,
   * as GradMax grows all layers at a growth step).
   */
  select?: 'score' | 'all';
  /** Epochs without improvement of the validation loss by `minDelta` before growing (default 2). */
  patience?: number;
  minDelta?: number;
  /**
   * How new units start: `gradmax` (default), `net2net` (copies of existing units), or `random`
   * (fresh units: incoming weights from the layer's initializer, outgoing weights zero, so the
   * function is unchanged and the new units bring features unlike the existing ones).
   */
  method?: 'gradmax' | 'net2net' | 'random';
  /** Net2Net only: standard deviation of Gaussian noise added to the new units' incoming weights (default 0: exact). */
  noise?: number;
  /**
   * Net2Net only: optimizer state of the copies. 'zero' (default): new units start with zero
   * moments, like any inserted unit. 'copy': each copy takes its source unit's slots (Adam's
   * m and v), so it does not start with Adam's large first steps.
   */
  optimizerState?: (typeof OPTIMIZER_STATES)[number];
  /** Net2Net only: how a unit's outgoing weights are shared with its copies (see `widen`). Default 'random'. */
  split?: (typeof SPLITS)[number];
  budget: GrowthBudget;
  /** Batch used to score groups (gradient norm) and for GradMax statistics. */
  batch: { x: Tensor; y: Tensor };
  seed?: number;
}

/** Why a growth could not happen. */
export function checkBudget(model: Model, budget: GrowthBudget, grownUnits: number, extra: { units: number; params: number; flops: number }): void {
  const counts = model.counts();
  const over: string[] = [];
  if (budget.units !== undefined && grownUnits + extra.units > budget.units) over.push(`units ${grownUnits + extra.units} > ${budget.units}`);
  if (budget.params !== undefined && counts.params + extra.params > budget.params) over.push(`parameters ${counts.params + extra.params} > ${budget.params}`);
  if (budget.flops !== undefined && counts.flops + extra.flops > budget.flops) over.push(`FLOPs ${counts.flops + extra.flops} > ${budget.flops}`);
  if (over.length > 0) throw new RsError('BUDGET_EXCEEDED', `Growth would exceed the budget: ${over.join(', ')}.`, { budget, over });
}

/** Parameters and FLOPs one more unit of `groupId` costs (measured on the graph's shapes). */
function unitCost(model: Model, groupId: string): { params: number; flops: number } {
  const group = model.group(groupId);
  let params = 0;
  for (const m of group.params) {
    const shape = model.param(m.param).value.shape;
    params += shape.reduce((a, b, i) => (i === m.axis ? a : a * b), 1) * m.inner * m.outer.reduce((a, [c]) => a * c, 1);
  }
  // FLOPs per sample: a multiply-add per weight of a dense layer.
  return { params, flops: 2 * params };
}

/**
 * Grows the network when validation loss stalls: picks the group whose parameters have the
 * largest gradient norm per unit on `batch` (where capacity is needed), and adds `step` units
 * there (GradMax by default), as long as the budget allows. A `fit` callback (needs `validation`).
 *
 * @example
 * const grow = growOnPlateau({ groups: ['fc1', 'fc2'], budget: { params: 270_000 }, batch });
 * await fit(model, train, { loss, epochs: 30, validation, callbacks: [grow] });
 */
export function growOnPlateau(options: PlateauOptions): Callback & { history: { epoch: number; group: string; units: number; params: number }[] } {
  const groups = options.groups;
  const known = (what: string, record: Record<string, number> | undefined): void => {
    for (const id of Object.keys(record ?? {})) {
      if (!groups.includes(id)) throw new RsError('INVALID_ARGUMENT', `${what} names group '${id}', which is not in groups [${groups.join(', ')}].`, { group: id });
    }
  };
  const stepOption = options.step ?? 16;
  const steps = new Map<string, number>();
  if (typeof stepOption === 'object' && stepOption !== null) {
    known('step', stepOption);
    for (const id of groups) if (stepOption[id] !== undefined) steps.set(id, checkCount(stepOption[id], `step of '${id}'`));
  } else {
    const step = checkCount(stepOption, 'step');
    for (const id of groups) steps.set(id, step);
  }
  known('maxSize', options.maxSize);
  for (const [id, size] of Object.entries(options.maxSize ?? {})) checkCount(size, `maxSize of '${id}'`);
  if (options.noise !== undefined && !(options.noise >= 0)) throw new RsError('INVALID_ARGUMENT', `noise must be >= 0, got ${String(options.noise)}.`);
  checkChoice('split', options.split, SPLITS, 'random');
  checkChoice('optimizerState', options.optimizerState, OPTIMIZER_STATES, 'zero');
  checkChoice('method', options.method, ['gradmax', 'net2net', 'random'], 'gradmax');
  const select = checkChoice('select', options.select, ['score', 'all'], 'score');
  // Units a group would take at the next step (0: it cannot grow any more).
  const nextStep = (model: Model, id: string): number => {
    const step = steps.get(id) ?? 0;
    const max = options.maxSize?.[id];
    return max === undefined ? step : Math.max(0, Math.min(step, max - model.group(id).size));
  };
  const patience = options.patience ?? 2;
  const minDelta = options.minDelta ?? 1e-3;
  let best = Infinity;
  let waited = 0;
  let grown = 0;
  const history: { epoch: number; group: string; units: number; params: number }[] = [];
  return {
    history,
    onEpochEnd(info: EpochInfo) {
      if (info.valLoss === undefined) throw new RsError('INVALID_ARGUMENT', 'growOnPlateau watches the validation loss: pass `validation` to fit.');
      if (info.valLoss < best - minDelta) {
        best = info.valLoss;
        waited = 0;
        return;
      }
      waited += 1;
      if (waited < patience) return;
      waited = 0;
      const model = info.model;
      const candidates = groups.filter((id) => nextStep(model, id) > 0);
      if (candidates.length === 0) return;
      // Capacity score: gradient norm of each group's parameters, per unit.
      const g = computeGradients(model, [options.batch.x], options.batch.y, resolveLoss('softmaxCrossEntropy'), { training: false });
      let scores: { id: string; score: number }[];
      try {
        scores = candidates.map((id) => {
          const group = model.group(id);
          const keys = [...new Set(group.params.map((p) => p.param))];
          const norm = tf.tidy(() => Math.sqrt(tf.addN(keys.map((k) => tf.sum(tf.square(g.grads.get(k) as Tensor)))).dataSync()[0]));
          return { id, score: norm / group.size };
        });
      } finally {
        // An unknown group (UNKNOWN_GROUP) must not strand the gradients.
        disposeGradients(g);
      }
      scores.sort((a, b) => b.score - a.score);
      let any = false;
      for (const { id } of scores) {
        const count = nextStep(model, id);
        const cost = unitCost(model, id);
        try {
          checkBudget(model, options.budget, grown, { units: count, params: cost.params * count, flops: cost.flops * count });
        } catch {
          continue;
        }
        if (options.method === 'random') model.edit((tx) => tx.insertUnits(id, count), { technique: 'grow', reason: `plateau at epoch ${info.epoch + 1}: ${count} fresh unit(s) in '${id}' (random fan-in, zero fan-out)`, details: { method: 'random' } });
        else if (options.method === 'net2net') widen(model, id, count, { seed: (options.seed ?? 0) + history.length, split: options.split ?? 'random', noise: options.noise, optimizerState: options.optimizerState, reason: `plateau at epoch ${info.epoch + 1}: widen '${id}'` });
        else growGradMax(model, id, count, { batch: options.batch, bias: 1e-6, reason: `plateau at epoch ${info.epoch + 1}: GradMax growth of '${id}'` });
        grown += count;
        any = true;
        history.push({ epoch: info.epoch, group: id, units: model.group(id).size, params: model.counts().params });
        if (select === 'score') break;
      }
      if (any) best = Infinity;
    },
  };
}
