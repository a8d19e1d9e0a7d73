// Structured pruning: physical removal of units through core edits.
import { RsError, type Model, type UnitGroup } from '@rs/core';
import { groupUnitScores } from './group-scores';
import { checkFraction, checkMinimum, checkScope, editableGroups, minimumKept, resolveScore, smallest, type Scope } from './prune-common';
import type { ImportanceScore, ScoreContext, ScoreRegistry } from './scores';

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
  const score = resolveScore(model, options);
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
