import { tf, type Model, type Tensor, type UnitGroup } from '@rs/core';
import { unitPositions } from '@rs/core/extend';
import { scoreWeights, type ImportanceScore, type ScoreContext } from './scores';
import { readValues } from './read';

/**
 * Per-unit importance of a unit group: the weight scores summed over every coupled parameter
 * of the group (every member, `out` and `in`), at each unit's positions. Torch-Pruning's
 * group importance, derived from core's unit groups rather than hand-coded couplings. For a
 * `signed` score (taylorGroup) the unit's score is the absolute value of that sum.
 *
 * @example
 * const scores = groupUnitScores(model, [model.group('fc1')], l1, {}); // Map { 'fc1' => Float64Array(300) }
 */
export function groupUnitScores(model: Model, groups: UnitGroup[], score: ImportanceScore, context: ScoreContext): Map<string, Float64Array> {
  const params = [...new Set(groups.flatMap((g) => g.params.map((p) => p.param)))];
  const weights = scoreWeights(score, model, params, context);
  try {
    // Sum each scored parameter over every axis but the member's, once per (param, axis).
    const profiles = new Map<string, Float32Array>();
    const profile = (key: string, axis: number): Float32Array => {
      const id = `${key}#${axis}`;
      let values = profiles.get(id);
      if (!values) {
        const w = weights.get(key) as Tensor;
        const others = w.shape.map((_, a) => a).filter((a) => a !== axis);
        values = readValues(() => (others.length > 0 ? tf.sum(w, others) : tf.clone(w)));
        profiles.set(id, values);
      }
      return values;
    };
    const out = new Map<string, Float64Array>();
    for (const group of groups) {
      const scores = new Float64Array(group.size);
      for (const member of group.params) {
        const values = profile(member.param, member.axis);
        for (let u = 0; u < group.size; u++) for (const p of unitPositions(member, u)) scores[u] += values[p];
      }
      if (score.signed) for (let u = 0; u < group.size; u++) scores[u] = Math.abs(scores[u]);
      out.set(group.id, scores);
    }
    return out;
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}
