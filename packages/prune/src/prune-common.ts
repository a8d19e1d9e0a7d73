// Argument checks and selection helpers shared by pruneWeights, pruneUnits and materialize.
import { RsError, type Model, type UnitGroup } from '@rs/core';
import { defaultScores, type ImportanceScore, type ScoreContext, type ScoreRegistry } from './scores';

/** `layer`: every parameter or group reaches the target; `global`: one ranking across all of them. */
export type Scope = 'layer' | 'global';

export function checkFraction(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new RsError('INVALID_ARGUMENT', `${name} must be a number in [0, 1), got ${String(value)}.`, { [name]: value });
  }
  return value;
}

/** Count kept at least out of `size`, from a fraction (< 1) or a count (>= 1); never below 1. */
export function minimumKept(minimum: number, size: number): number {
  return Math.min(size, Math.max(1, minimum < 1 ? Math.ceil(minimum * size) : Math.floor(minimum)));
}

export function checkMinimum(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RsError('INVALID_ARGUMENT', `${name} must be a fraction in [0, 1) or a count >= 1, got ${String(value)}.`, { [name]: value });
  }
  return value;
}

/**
 * The score to use, checked for the data it needs (so third-party scores get the check too). A
 * name is looked up in `options.scores` (default: the built-ins), then among the scores the
 * model's registry provides (extension point `'score'`, from a technique's `register`).
 */
export function resolveScore(model: Model, options: { score?: string | ImportanceScore; scores?: ScoreRegistry; context?: ScoreContext }): ImportanceScore {
  const name = options.score ?? 'l1';
  const own = options.scores ?? defaultScores;
  let score: ImportanceScore;
  if (typeof name !== 'string' || own.has(name)) {
    score = own.get(name);
  } else {
    const provided = model.registry.extension('score', name);
    if (provided === undefined) {
      const known = [...own.names(), ...[...model.registry.provided('score').keys()].filter((k) => !own.has(k))];
      throw new RsError('INVALID_ARGUMENT', `Unknown score '${name}'. Registered: ${known.join(', ')}.`, { score: name });
    }
    if (typeof provided !== 'object' || typeof provided.weights !== 'function') {
      throw new RsError('INVALID_ARGUMENT', `The score provided as '${name}' (extension point 'score') has no weights(model, params, context) function.`, { score: name });
    }
    score = provided;
  }
  if (score.needsData && !(options.context?.batches && options.context.batches.length > 0)) {
    throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' needs data: pass { context: { batches: [{ x, y }] } } (and a loss, default softmaxCrossEntropy).`, { score: score.name });
  }
  return score;
}

export function checkScope(scope: unknown): Scope {
  if (scope !== 'layer' && scope !== 'global') throw new RsError('INVALID_ARGUMENT', `Unknown scope '${String(scope)}'; use 'layer' or 'global'.`, { scope });
  return scope;
}

/** Indices of the `count` smallest values (stable for ties). */
export function smallest(values: Float32Array, count: number): Uint32Array {
  const order = new Uint32Array(values.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => values[a] - values[b] || a - b);
  return order.subarray(0, count);
}

export function editableGroups(model: Model, ids?: string[]): UnitGroup[] {
  if (ids) {
    return ids.map((id) => {
      const group = model.group(id);
      if (group.frozen) throw new RsError('FROZEN_GROUP', `Group '${group.id}' cannot be pruned: ${group.frozen.join('; ')}.`, { group: group.id });
      return group;
    });
  }
  return model.groups().filter((g) => !g.frozen && g.sources.length > 0);
}
