import { RsError, tf, type Model, type Tensor, type UnitGroup } from '@rs/core';
import { unitPositions } from '@rs/core/extend';
import { needBatches, scoreWeights, taylorGroup, type ImportanceScore, type ScoreContext } from './scores';
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
  if (typeof score.units === 'function') return checkedUnitScores(score, score.units(model, groups, context), groups);
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

/** A unit-level score's result, checked: one finite value per unit of every requested group. */
function checkedUnitScores(score: ImportanceScore, scores: Map<string, Float64Array>, groups: UnitGroup[]): Map<string, Float64Array> {
  if (!(scores instanceof Map)) throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' must return a Map from group id to one value per unit.`, { score: score.name });
  for (const g of groups) {
    const values = scores.get(g.id);
    if (!values || values.length !== g.size || !Array.from(values).every(Number.isFinite)) {
      throw new RsError('INVALID_ARGUMENT', `Score '${score.name}' returned ${values ? `${values.length} value(s)` : 'nothing'} for unit group '${g.id}' of ${g.size} units (finite numbers expected).`, { score: score.name, group: g.id });
    }
  }
  return scores;
}

/**
 * Gate importance of each unit (Michel et al. 2019, "Are Sixteen Heads Really Better than
 * One?"): the expected absolute derivative of the loss with respect to a gate that scales what
 * the next computation reads from the unit, E|dL/d xi_u|, the expectation over
 * `context.batches` (one absolute value per batch, then the mean). At xi = 1 that derivative is
 * the sum of w * dL/dw over the weights that read the unit, the group's `in` members (the next
 * dense layer's rows, an attention head's rows of the output projection), so it costs one
 * gradient per batch and no gate in the graph. It is exact where those readers are linear in the
 * unit (dense, convolution, attention's output projection). `taylorGroup` instead takes one
 * |sum| over every member, including the weights that produce the unit (an attention head's q
 * and k), whose terms do not measure its output.
 *
 * @example
 * const heads = model.groups().filter((g) => g.id.endsWith(':heads'));
 * const scores = gateImportance(model, heads, { batches }); // Map { 'block0.attn:heads' => Float64Array(4), ... }
 */
export function gateImportance(model: Model, groups: UnitGroup[], context: ScoreContext): Map<string, Float64Array> {
  const batches = needBatches(context, 'gateImportance');
  const readers = groups.map((g) => {
    const params = g.params.filter((m) => m.role === 'in');
    if (params.length === 0) throw new RsError('INVALID_ARGUMENT', `gateImportance: unit group '${g.id}' has no weights that read its units (no 'in' member), so it has no gate to score.`, { group: g.id });
    return { ...g, params };
  });
  const sums = new Map(groups.map((g) => [g.id, new Float64Array(g.size)]));
  for (const batch of batches) {
    const scores = groupUnitScores(model, readers, taylorGroup, { ...context, batches: [batch] });
    for (const [id, values] of scores) {
      const sum = sums.get(id) as Float64Array;
      values.forEach((v, u) => (sum[u] += v / batches.length));
    }
  }
  return sums;
}
