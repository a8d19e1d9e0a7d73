import { RsError, disposeRun, splitParamKey, tf, type Model, type Tensor, type UnitGroup } from '@rs/core';
import { defaultScores, scoreWeights, type ImportanceScore, type ScoreContext, type ScoreRegistry } from './scores';
import { groupUnitScores } from './group-scores';
import { unitPositions } from '@rs/core/extend';
import { readValues } from './read';

/** `layer`: every parameter or group reaches the target; `global`: one ranking across all of them. */
export type Scope = 'layer' | 'global';

/** Options of `pruneWeights` (unstructured pruning with element masks). */
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
  /**
   * Per-parameter minimum kept, so no layer is cut off: a fraction of its weights if < 1, else
   * a count of weights (default 0.01, i.e. 1%; at least one weight is always kept).
   */
  minKeep?: number;
  context?: ScoreContext;
  reason?: string;
}

/** Options of `pruneUnits` (structured pruning by physical removal of units). */
export interface PruneUnitsOptions {
  /** Fraction of the units of each selected group (layer scope) or of all their units (global) to remove, in [0, 1). */
  fraction: number;
  score?: string | ImportanceScore;
  scores?: ScoreRegistry;
  /** Default `layer`. Global ranks units by their score divided by their group's mean score. */
  scope?: Scope;
  /** Group ids (default: every editable group). */
  groups?: string[];
  /** Units every group keeps at least: a count if >= 1 (default 1), a fraction of its size if < 1. Never below 1. */
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

/** Count kept at least out of `size`, from a fraction (< 1) or a count (>= 1); never below 1. */
function minimumKept(minimum: number, size: number): number {
  return Math.min(size, Math.max(1, minimum < 1 ? Math.ceil(minimum * size) : Math.floor(minimum)));
}

function checkMinimum(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RsError('INVALID_ARGUMENT', `${name} must be a fraction in [0, 1) or a count >= 1, got ${String(value)}.`, { [name]: value });
  }
  return value;
}

/** The score to use, checked for the data it needs (so third-party scores get the check too). */
function resolveScore(options: { score?: string | ImportanceScore; scores?: ScoreRegistry; context?: ScoreContext }): ImportanceScore {
  const score = (options.scores ?? defaultScores).get(options.score ?? 'l1');
  if (score.needsData && !(options.context?.batches && options.context.batches.length > 0)) {
    throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' needs data: pass { context: { batches: [{ x, y }] } } (and a loss, default softmaxCrossEntropy).`, { score: score.name });
  }
  return score;
}

function checkScope(scope: unknown): Scope {
  if (scope !== 'layer' && scope !== 'global') throw new RsError('INVALID_ARGUMENT', `Unknown scope '${String(scope)}'; use 'layer' or 'global'.`, { scope });
  return scope;
}

/**
 * The parameters pruned by default: trainable weights of rank >= 2 (dense/conv kernels, embeddings...).
 *
 * @example
 * prunableParams(Model.create(lenet300100())); // ['fc1/kernel', 'fc2/kernel', 'fc3/kernel']
 */
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
  const minKeep = checkMinimum('minKeep', options.minKeep ?? 0.01);
  for (const [key, value] of Object.entries(options.sparsityPerParam ?? {})) checkFraction(`sparsityPerParam['${key}']`, value);
  if (options.sparsityPerParam && scope === 'global') {
    throw new RsError('INVALID_ARGUMENT', "sparsityPerParam applies to scope 'layer' only; with scope 'global' one ranking decides every layer's sparsity.");
  }
  const score = resolveScore(options);
  const params = options.params ?? prunableParams(model);
  for (const key of params) model.param(key); // typed error for unknown keys
  if (params.length === 0) throw new RsError('INVALID_ARGUMENT', 'No parameters to prune.');
  for (const key of Object.keys(options.sparsityPerParam ?? {})) {
    if (!params.includes(key)) throw new RsError('INVALID_ARGUMENT', `sparsityPerParam names '${key}', which is not among the pruned parameters (${params.join(', ')}).`, { param: key });
  }

  const weights = scoreWeights(score, model, params, options.context ?? {});
  const values = new Map<string, Float32Array>();
  const already = new Map<string, number>();
  try {
    for (const key of params) {
      const s = (weights.get(key) as Tensor).dataSync().slice() as Float32Array;
      if (score.signed) for (let i = 0; i < s.length; i++) s[i] = Math.abs(s[i]);
      const mask = model.param(key).mask?.dataSync();
      // Pruned weights rank first and stay pruned whatever the score or target says: sparsity
      // never decreases (a minimum that an earlier call undercut is not restored either).
      let masked = 0;
      if (mask) {
        for (let i = 0; i < s.length; i++) {
          if (mask[i] === 0) {
            s[i] = -Infinity;
            masked += 1;
          }
        }
      }
      values.set(key, s);
      already.set(key, masked);
    }
  } finally {
    for (const t of weights.values()) t.dispose();
  }

  const prune = new Map<string, Uint8Array>(params.map((k) => [k, new Uint8Array((values.get(k) as Float32Array).length)]));
  const maxPrune = (key: string) => {
    const n = (values.get(key) as Float32Array).length;
    return Math.max(n - minimumKept(minKeep, n), already.get(key) as number);
  };
  if (scope === 'layer') {
    for (const key of params) {
      const s = values.get(key) as Float32Array;
      const target = options.sparsityPerParam?.[key] ?? sparsity;
      const count = Math.max(already.get(key) as number, Math.min(Math.floor(target * s.length), maxPrune(key)));
      for (const i of smallest(s, count)) (prune.get(key) as Uint8Array)[i] = 1;
    }
  } else {
    const total = params.reduce((n, k) => n + (values.get(k) as Float32Array).length, 0);
    const all = new Float32Array(total);
    const owner = new Uint32Array(total);
    let at = 0;
    params.forEach((key, p) => {
      all.set(values.get(key) as Float32Array, at);
      owner.fill(p, at, at + (values.get(key) as Float32Array).length);
      at += (values.get(key) as Float32Array).length;
    });
    const offsets: number[] = [];
    params.reduce((n, k) => (offsets.push(n), n + (values.get(k) as Float32Array).length), 0);
    const budget = params.map((k) => maxPrune(k) - (already.get(k) as number));
    let remaining = Math.max(0, Math.floor(sparsity * total) - params.reduce((n, k) => n + (already.get(k) as number), 0));
    for (const i of smallest(all, total)) {
      const p = owner[i];
      if (all[i] === -Infinity) {
        (prune.get(params[p]) as Uint8Array)[i - offsets[p]] = 1;
        continue;
      }
      if (remaining === 0) break;
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
  const score = resolveScore(options);
  const minUnits = checkMinimum('minUnits', options.minUnits ?? 1);
  const groups = editableGroups(model, options.groups);
  if (groups.length === 0) throw new RsError('INVALID_ARGUMENT', 'No editable unit groups to prune.');
  const scores = groupUnitScores(model, groups, score, options.context ?? {});
  const keepAtLeast = (g: UnitGroup) => minimumKept(minUnits, g.size);
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

/** Sum of |t| over every axis but `axis`: one value per position along it. */
function axisProfile(t: Tensor, axis: number): Float32Array {
  const others = t.shape.map((_, a) => a).filter((a) => a !== axis);
  return readValues(() => (others.length > 0 ? tf.sum(tf.abs(t), others) : tf.abs(t)));
}

/**
 * Units of `candidates` that are non-zero on `probe` where it matters: in the activations that
 * the group's consumers (nodes holding its `in` members) read. A zero-input unit whose
 * pre-activation is its bias but whose ReLU output is 0 is removable; after a sigmoid it is not.
 */
function liveOnProbe(model: Model, group: UnitGroup, candidates: number[], probe: Tensor | Tensor[]): number[] {
  const graph = model.graph;
  const consumers = new Set(group.params.filter((p) => p.role === 'in').map((p) => splitParamKey(p.param)[0]));
  const read = new Set(graph.nodes.filter((n) => consumers.has(n.id)).flatMap((n) => n.inputs));
  const inputs = new Set(graph.inputs.map((i) => i.id));
  const members = group.activations.filter((a) => read.has(a.node) && !inputs.has(a.node));
  if (members.length === 0) return [];
  const run = model.run(probe, { taps: { activations: [...new Set(members.map((a) => a.node))] } });
  try {
    const profiles = new Map<string, Float32Array>();
    for (const [node, value] of run.activations) profiles.set(node, axisProfile(value, value.rank - 1));
    return candidates.filter((u) =>
      members.some((a) => {
        const profile = profiles.get(a.node);
        return profile !== undefined && unitPositions(a, u).some((pos) => profile[pos] !== 0);
      }),
    );
  } finally {
    disposeRun(run);
  }
}

/**
 * Physically removes chosen units (decided elsewhere: your own rule, a saliency you computed)
 * as one journaled `prune` edit. Asking for every unit of a group, an index out of range or a
 * frozen group raises core's typed errors (`REMOVE_ALL_UNITS`, `UNIT_INDEX_OUT_OF_RANGE`,
 * `FROZEN_GROUP`) and leaves the model unchanged.
 *
 * @example
 * removeUnits(model, { fc1: [3, 7], 'block0.attn:heads': [1] }, { reason: 'dead units' });
 */
export function removeUnits(model: Model, selection: Record<string, number[]>, options: { reason?: string } = {}): { removed: Record<string, number[]> } {
  if (!selection || typeof selection !== 'object') throw new RsError('INVALID_ARGUMENT', 'removeUnits takes { groupId: [unit indices] }.');
  const removed: Record<string, number[]> = {};
  for (const [id, units] of Object.entries(selection)) {
    if (!Array.isArray(units)) throw new RsError('INVALID_ARGUMENT', `removeUnits: '${id}' must map to an array of unit indices.`, { group: id });
    if (units.length > 0) removed[id] = [...units];
  }
  model.edit(
    (tx) => {
      for (const [id, units] of Object.entries(removed)) tx.removeUnits(id, units);
    },
    { technique: 'prune', reason: options.reason ?? `remove chosen units of ${Object.keys(removed).join(', ') || 'no group'}` },
  );
  return { removed };
}

/** Options of `materialize`. */
export interface MaterializeOptions {
  /**
   * Also consider units whose producing weight matrices are all masked while their bias is
   * not. Such a unit outputs a constant, act(bias): with a `probe`, only those whose constant is
   * 0 where consumers read it (a ReLU of a negative bias) are removed, exactly; without one,
   * removal drops that constant's contribution. Off by default.
   */
  ignoreBias?: boolean;
  /**
   * Inputs to check exactness on: a candidate unit whose activation, where the group's
   * consumers read it, is non-zero on the probe (an op with f(0) != 0 such as sigmoid, or a live
   * bias under `ignoreBias`) is kept and reported in `skipped`. Without a probe, ops between
   * producer and consumer are trusted to map a zero unit to zero.
   */
  probe?: Tensor | Tensor[];
  reason?: string;
}

/** What `materialize` removed and what it left in place. */
export interface MaterializeResult {
  /** Units removed, by group id. */
  removed: Record<string, number[]>;
  /** Groups with dead units that were left in place, and why. */
  skipped: { group: string; units: number; reason: string }[];
}

/**
 * Turns masks that zero whole units into physical removal (NNI's "speedup" step): a unit goes
 * when every weight that produces it (its `out` members: kernel columns, bias, a head's q/k/v)
 * is zero, so removal is exact. Masks on what remains are kept. Groups where a per-unit vector
 * reads the unit (normalisation scale/offset, rank-1 `in` members) are skipped, since a zero
 * unit there is not a removable one; so is a group whose units would all go.
 *
 * @example
 * pruneWeights(model, { sparsity: 0.9 });
 * const { removed } = materialize(model, { ignoreBias: true });
 */
export function materialize(model: Model, options: MaterializeOptions = {}): MaterializeResult {
  const removed: Record<string, number[]> = {};
  const skipped: MaterializeResult['skipped'] = [];
  for (const group of editableGroups(model)) {
    const producers = group.params.filter((p) => p.role === 'out' && !(options.ignoreBias && model.param(p.param).value.rank === 1));
    if (producers.length === 0) continue;
    // Per unit, the summed |value| of its producing weights (masked weights are stored as 0).
    const profiles = producers.map((p) => axisProfile(model.param(p.param).value, p.axis));
    let dead: number[] = [];
    for (let u = 0; u < group.size; u++) {
      if (producers.every((p, i) => unitPositions(p, u).every((pos) => profiles[i][pos] === 0))) dead.push(u);
    }
    if (dead.length === 0) continue;
    if (options.probe) {
      const live = liveOnProbe(model, group, dead, options.probe);
      if (live.length > 0) {
        skipped.push({ group: group.id, units: live.length, reason: `units [${live.join(', ')}] output non-zero values on the probe where consumers read them (a live bias, or an op that maps 0 to non-zero)` });
        dead = dead.filter((u) => !live.includes(u));
        if (dead.length === 0) continue;
      }
    }
    const perUnitReader = group.params.find((p) => p.role === 'in' && model.param(p.param).value.rank === 1);
    if (perUnitReader) {
      skipped.push({ group: group.id, units: dead.length, reason: `'${perUnitReader.param}' gives each unit its own offset, so a zero unit is not removable exactly` });
    } else if (dead.length === group.size) {
      skipped.push({ group: group.id, units: dead.length, reason: 'every unit is dead; a group keeps at least one (remove the node instead)' });
    } else {
      removed[group.id] = dead;
    }
  }
  if (Object.keys(removed).length > 0) {
    model.edit(
      (tx) => {
        for (const [id, units] of Object.entries(removed)) tx.removeUnits(id, units);
      },
      {
        technique: 'prune',
        reason: options.reason ?? `materialize: remove units whose producing weights are all masked${options.ignoreBias ? ' (biases ignored)' : ''}`,
        details: { ignoreBias: options.ignoreBias ?? false },
      },
    );
  }
  return { removed, skipped };
}
