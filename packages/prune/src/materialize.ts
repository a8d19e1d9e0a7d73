// Materialize: masks that zero whole units turned into physical removal.
import { disposeRun, splitParamKey, tf, type Model, type Tensor, type UnitGroup } from '@rs/core';
import { unitPositions } from '@rs/core/extend';
import { editableGroups } from './prune-common';
import { readValues } from './read';

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
