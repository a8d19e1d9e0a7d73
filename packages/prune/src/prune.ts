import { RsError, tf, type Model, type Tensor, type UnitGroup } from '@rs/core';
import { defaultScores, type ImportanceScore, type ScoreContext, type ScoreRegistry } from './scores';
import { groupUnitScores } from './group-scores';
import { unitPositions } from '@rs/core/extend';

export type Scope = 'layer' | 'global';

export interface PruneWeightsOptions {
  /** Fraction of the selected weights that are zero afterwards, in [0, 1). */
  sparsity: number;
  /** Per-parameter sparsity overriding `sparsity` (layer scope), e.g. a lower rate for the output layer. */
  sparsityPerParam?: Record<string, number>;
  /** Score name or object (default `l1`). */
  score?: string | ImportanceScore;
  scores?: ScoreRegistry;
  /** `layer`: each parameter reaches the sparsity; `global`: one ranking across all (default). */
  scope?: Scope;
  /** Parameters to prune (default: every trainable weight of rank >= 2: kernels, embeddings). */
  params?: string[];
  /** Per-parameter minimum fraction of weights kept, so no layer is cut off (default 0.01). */
  minKeep?: number;
  context?: ScoreContext;
  reason?: string;
}

export interface PruneUnitsOptions {
  /** Fraction of the units of each selected group (layer scope) or of all their units (global) to remove, in [0, 1). */
  fraction: number;
  score?: string | ImportanceScore;
  scores?: ScoreRegistry;
  /** Default `layer`. Global ranks units by their score divided by their group's mean score. */
  scope?: Scope;
  /** Group ids (default: every editable group). */
  groups?: string[];
  /** Units every group keeps at least (default 1), or a fraction of its size if < 1. */
  minUnits?: number;
  context?: ScoreContext;
  reason?: string;
}

function checkFraction(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new RsError('INVALID_ARGUMENT', `${name} must be a number in [0, 1), got ${String(value)}.`, { [name]: value });
  }
  return value;
}

function checkScope(scope: unknown): Scope {
  if (scope !== 'layer' && scope !== 'global') throw new RsError('INVALID_ARGUMENT', `Unknown scope '${String(scope)}'; use 'layer' or 'global'.`, { scope });
  return scope;
}

/** The parameters pruned by default: trainable weights of rank >= 2 (dense/conv kernels, embeddings...). */
export function prunableParams(model: Model): string[] {
  return model.paramKeys().filter((k) => {
    const entry = model.param(k);
    return entry.trainable && entry.role === 'weight' && entry.value.rank >= 2;
  });
}

/** Indices of the `count` smallest values (stable for ties). */
function smallest(values: Float32Array, count: number): Uint32Array {
  const order = new Uint32Array(values.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => values[a] - values[b] || a - b);
  return order.subarray(0, count);
}

/**
 * Unstructured pruning: element masks on the selected weights so that `sparsity` of them are
 * zero (already-pruned weights stay pruned), chosen by a score, layer-wise or globally. One
 * journaled edit; on any error the model is unchanged.
 *
 * @example
 * pruneWeights(model, { sparsity: 0.9, score: 'l1', scope: 'layer' });
 */
export function pruneWeights(model: Model, options: PruneWeightsOptions): { sparsity: Record<string, number> } {
  const sparsity = checkFraction('sparsity', options.sparsity);
  const scope = checkScope(options.scope ?? 'global');
  const minKeep = options.minKeep ?? 0.01;
  if (!(minKeep > 0 && minKeep <= 1)) throw new RsError('INVALID_ARGUMENT', `minKeep must be in (0, 1], got ${String(minKeep)}.`);
  for (const [key, value] of Object.entries(options.sparsityPerParam ?? {})) checkFraction(`sparsityPerParam['${key}']`, value);
  const score = (options.scores ?? defaultScores).get(options.score ?? 'l1');
  const params = options.params ?? prunableParams(model);
  for (const key of params) model.param(key); // typed error for unknown keys
  if (params.length === 0) throw new RsError('INVALID_ARGUMENT', 'No parameters to prune.');

  const weights = score.weights(model, params, options.context ?? {});
  const values = new Map<string, Float32Array>();
  try {
    for (const key of params) {
      const s = (weights.get(key) as Tensor).dataSync().slice() as Float32Array;
      const mask = model.param(key).mask?.dataSync();
      // Pruned weights rank first so they stay pruned whatever the score says.
      if (mask) for (let i = 0; i < s.length; i++) if (mask[i] === 0) s[i] = -Infinity;
      values.set(key, s);
    }
  } finally {
    for (const t of weights.values()) t.dispose();
  }

  const prune = new Map<string, Uint8Array>(params.map((k) => [k, new Uint8Array((values.get(k) as Float32Array).length)]));
  const maxPrune = (key: string) => {
    const n = (values.get(key) as Float32Array).length;
    return Math.max(0, n - Math.max(1, Math.ceil(minKeep * n)));
  };
  if (scope === 'layer') {
    for (const key of params) {
      const s = values.get(key) as Float32Array;
      const target = options.sparsityPerParam?.[key] ?? sparsity;
      const count = Math.min(Math.floor(target * s.length), maxPrune(key));
      for (const i of smallest(s, count)) (prune.get(key) as Uint8Array)[i] = 1;
    }
  } else {
    const total = params.reduce((n, k) => n + (values.get(k) as Float32Array).length, 0);
    const all = new Float32Array(total);
    const owner = new Uint16Array(total);
    let at = 0;
    params.forEach((key, p) => {
      all.set(values.get(key) as Float32Array, at);
      owner.fill(p, at, at + (values.get(key) as Float32Array).length);
      at += (values.get(key) as Float32Array).length;
    });
    const offsets = params.map((_, p) => params.slice(0, p).reduce((n, k) => n + (values.get(k) as Float32Array).length, 0));
    const budget = params.map((k) => maxPrune(k));
    let remaining = Math.floor(sparsity * total);
    for (const i of smallest(all, total)) {
      if (remaining === 0) break;
      const p = owner[i];
      if (budget[p] === 0) continue;
      budget[p] -= 1;
      remaining -= 1;
      (prune.get(params[p]) as Uint8Array)[i - offsets[p]] = 1;
    }
  }

  const achieved: Record<string, number> = {};
  model.edit(
    (tx) => {
      for (const key of params) {
        const flags = prune.get(key) as Uint8Array;
        const keep = new Float32Array(flags.length);
        let zeros = 0;
        for (let i = 0; i < flags.length; i++) {
          keep[i] = flags[i] ? 0 : 1;
          zeros += flags[i];
        }
        achieved[key] = zeros / flags.length;
        const mask = tf.tensor(keep, model.param(key).value.shape);
        try {
          tx.setMask(key, mask);
        } finally {
          mask.dispose();
        }
      }
    },
    { technique: 'prune', reason: options.reason ?? `${score.name} ${scope} unstructured pruning to ${(100 * sparsity).toFixed(1)}% sparsity`, details: { score: score.name, scope, sparsity } },
  );
  return { sparsity: achieved };
}

function editableGroups(model: Model, ids?: string[]): UnitGroup[] {
  if (ids) {
    return ids.map((id) => {
      const group = model.group(id);
      if (group.frozen) throw new RsError('FROZEN_GROUP', `Group '${group.id}' cannot be pruned: ${group.frozen.join('; ')}.`, { group: group.id });
      return group;
    });
  }
  return model.groups().filter((g) => !g.frozen && g.sources.length > 0);
}

/**
 * Structured pruning: physically removes the least important units (neurons, channels,
 * attention heads) of unit groups through core edits, so the model gets smaller and faster.
 *
 * @example
 * pruneUnits(model, { fraction: 0.75, score: 'l1', groups: ['fc1', 'fc2'] });
 */
export function pruneUnits(model: Model, options: PruneUnitsOptions): { removed: Record<string, number[]> } {
  const fraction = checkFraction('fraction', options.fraction);
  const scope = checkScope(options.scope ?? 'layer');
  const score = (options.scores ?? defaultScores).get(options.score ?? 'l1');
  const groups = editableGroups(model, options.groups);
  const scores = groupUnitScores(model, groups, score, options.context ?? {});
  const keepAtLeast = (g: UnitGroup) => {
    const min = options.minUnits ?? 1;
    return Math.max(1, min < 1 ? Math.ceil(min * g.size) : Math.floor(min));
  };
  const removed: Record<string, number[]> = {};
  if (scope === 'layer') {
    for (const g of groups) {
      const count = Math.min(Math.floor(fraction * g.size), g.size - keepAtLeast(g));
      removed[g.id] = [...smallest(Float32Array.from(scores.get(g.id) as Float64Array), Math.max(0, count))].sort((a, b) => a - b);
    }
  } else {
    const entries: { group: UnitGroup; unit: number; value: number }[] = [];
    for (const g of groups) {
      const s = scores.get(g.id) as Float64Array;
      const mean = s.reduce((a, b) => a + b, 0) / s.length || 1;
      s.forEach((v, unit) => entries.push({ group: g, unit, value: v / mean }));
    }
    entries.sort((a, b) => a.value - b.value);
    let remaining = Math.floor(fraction * entries.length);
    const budget = new Map(groups.map((g) => [g.id, g.size - keepAtLeast(g)]));
    for (const e of entries) {
      if (remaining === 0) break;
      if ((budget.get(e.group.id) as number) <= 0) continue;
      budget.set(e.group.id, (budget.get(e.group.id) as number) - 1);
      (removed[e.group.id] ??= []).push(e.unit);
      remaining -= 1;
    }
    for (const id of Object.keys(removed)) removed[id].sort((a, b) => a - b);
  }
  model.edit(
    (tx) => {
      for (const [id, units] of Object.entries(removed)) if (units.length > 0) tx.removeUnits(id, units);
    },
    { technique: 'prune', reason: options.reason ?? `${score.name} ${scope} structured pruning of ${(100 * fraction).toFixed(1)}% of units`, details: { score: score.name, scope, fraction } },
  );
  return { removed };
}

/**
 * Turns masks that zero whole units into physical removal: a unit goes when every weight that
 * produces it (its `out` members) is masked. Masks on what remains are kept.
 *
 * @example
 * pruneWeights(model, { sparsity: 0.9 }); materialize(model);
 */
export function materialize(model: Model, options: { reason?: string } = {}): { removed: Record<string, number[]> } {
  const removed: Record<string, number[]> = {};
  for (const group of editableGroups(model)) {
    const producers = group.params.filter((p) => p.role === 'out');
    if (producers.length === 0 || producers.some((p) => !model.param(p.param).mask)) continue;
    const dead: number[] = [];
    const profiles = producers.map((p) => {
      const mask = model.param(p.param).mask as Tensor;
      const others = mask.shape.map((_, a) => a).filter((a) => a !== p.axis);
      return tf.tidy(() => (others.length ? tf.sum(mask, others) : tf.clone(mask))).dataSync();
    });
    for (let u = 0; u < group.size; u++) {
      const alive = producers.some((p, i) => unitPositions(p, u).some((pos) => profiles[i][pos] !== 0));
      if (!alive) dead.push(u);
    }
    if (dead.length > 0 && dead.length < group.size) removed[group.id] = dead;
  }
  if (Object.keys(removed).length > 0) {
    model.edit(
      (tx) => {
        for (const [id, units] of Object.entries(removed)) tx.removeUnits(id, units);
      },
      { technique: 'prune', reason: options.reason ?? 'materialize: remove units whose producing weights are all masked' },
    );
  }
  return { removed };
}
