import { RsError, createRng, tf, type Model, type UnitGroup } from '@rs/core';
import { blockStarts } from '@rs/core/extend';

function editableGroup(model: Model, groupId: string): UnitGroup {
  const group = model.group(groupId);
  if (group.frozen) throw new RsError('FROZEN_GROUP', `Group '${group.id}' cannot grow: ${group.frozen.join('; ')}.`, { group: group.id });
  if (group.params.length === 0) throw new RsError('INVALID_ARGUMENT', `Group '${group.id}' has no parameters to grow.`, { group: group.id });
  return group;
}

/** `value` if it is one of `allowed`, else `fallback` when `value` is undefined; otherwise INVALID_ARGUMENT. */
export function checkChoice<T extends string>(name: string, value: T | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value)) {
    const list = allowed.map((a) => `'${a}'`);
    throw new RsError('INVALID_ARGUMENT', `${name} must be ${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}, got ${String(value)}.`);
  }
  return value;
}

/** The ways `widen` can share a unit's outgoing weights with its copies (the default first). */
export const SPLITS = ['random', 'even', 'random-weights'] as const;
export const OPTIMIZER_STATES = ['zero', 'copy'] as const;

export function checkCount(count: unknown, what = 'count'): number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw new RsError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${String(count)}.`, { [what]: count });
  }
  return count;
}

/**
 * Net2WiderNet (Chen et al. 2016): adds `count` units to a group, each a copy of a randomly
 * chosen existing unit; the outgoing weights of a unit and its copies are shared out so that the
 * function is preserved exactly (noise off, the default).
 * `split` chooses the shares: `'random'` (default) random positive shares per unit, `'even'`
 * (the paper) 1 / copies, `'random-weights'` a random share per outgoing weight. With `'even'`
 * and no noise a unit and its copies get identical gradients and stay identical under training
 * (tested), so they add no capacity; the random splits break that symmetry.
 * `optimizerState: 'copy'` gives each copy its source unit's optimizer slots (e.g. Adam's
 * moments) instead of zeros.
 *
 * @example
 * widen(model, 'fc1', 100, { seed: 1 });
 */
export function widen(
  model: Model,
  groupId: string,
  count: number,
  options: { seed?: number; noise?: number; split?: (typeof SPLITS)[number]; optimizerState?: (typeof OPTIMIZER_STATES)[number]; reason?: string } = {},
): { sources: number[] } {
  const group = editableGroup(model, groupId);
  checkCount(count);
  const noise = options.noise ?? 0;
  if (!(noise >= 0)) throw new RsError('INVALID_ARGUMENT', `noise must be >= 0, got ${String(options.noise)}.`);
  const optimizerState = checkChoice('optimizerState', options.optimizerState, OPTIMIZER_STATES, 'zero');
  const split = checkChoice('split', options.split, SPLITS, 'random');
  const rng = createRng(options.seed ?? 0);
  const sources = Array.from({ length: count }, () => rng.int(group.size));
  const copies = new Float32Array(group.size).fill(1);
  for (const s of sources) copies[s] += 1;
  // Share of the outgoing weights each unit keeps (original units first, then the new ones).
  // `even` (the paper): 1 / copies. `random`: random positive shares summing to 1 per source,
  // still exact, but copies get different outgoing weights, hence different gradients, which
  // breaks their symmetry without noise. `random-weights`: a random share per outgoing weight
  // (per unit and consumer coordinate, summing to 1 over a unit and its copies for each
  // coordinate): still exact, and the copies' outgoing rows are no longer proportional, so their
  // incoming gradients differ in direction, not only in scale (with Adam, gradients that differ
  // only in scale give identical updates, and the copies would stay identical).
  const share = new Float32Array(group.size + count);
  if (split === 'random') {
    const raw = Array.from({ length: group.size + count }, () => 0.5 + rng.next());
    const totals = new Float32Array(group.size);
    raw.forEach((r, u) => (totals[u < group.size ? u : sources[u - group.size]] += r));
    raw.forEach((r, u) => (share[u] = r / totals[u < group.size ? u : sources[u - group.size]]));
  } else {
    for (let u = 0; u < share.length; u++) share[u] = 1 / copies[u < group.size ? u : sources[u - group.size]];
  }
  const n = group.size;
  const keys = [...new Set(group.params.map((p) => p.param))];
  model.edit(
    (tx) => {
      // Grow with placeholders, then rewrite every coupled parameter as a gather of itself:
      // along each of its unit axes, a new unit's positions read those of the unit it copies;
      // outgoing (`in`) axes are divided by the number of copies of each unit.
      tx.insertUnits(group.id, count);
      const grown = tx.group(group.id);
      const source = (u: number) => (u < n ? u : sources[u - n]);
      // Index (and share) along each unit axis of a parameter: a new unit's positions read
      // those of the unit it copies; outgoing (`in`) axes are scaled by the units' shares.
      const axesOf = (key: string, shape: number[]) => {
        const members = grown.params.filter((m) => m.param === key);
        return [...new Set(members.map((m) => m.axis))].map((axis) => {
          const index = Int32Array.from({ length: shape[axis] }, (_, p) => p);
          const scale = new Float32Array(shape[axis]).fill(1);
          const fresh = new Float32Array(shape[axis]);
          // random-weights: positions that share one outgoing weight's split (same block, same
          // source unit, same inner offset) get the same group id; -1 elsewhere.
          const splitGroup = new Int32Array(shape[axis]).fill(-1);
          let groups = 0;
          for (const m of members.filter((mm) => mm.axis === axis)) {
            blockStarts(m).forEach((start) => {
              const base = groups;
              for (let u = 0; u < grown.size; u++) {
                for (let i = 0; i < m.inner; i++) {
                  index[start + u * m.inner + i] = start + source(u) * m.inner + i;
                  if (m.role === 'in' && shape.length >= 2) {
                    if (split === 'random-weights') splitGroup[start + u * m.inner + i] = base + source(u) * m.inner + i;
                    else scale[start + u * m.inner + i] = share[u];
                  }
                  if (u >= n) fresh[start + u * m.inner + i] = 1;
                }
              }
              if (m.role === 'in' && shape.length >= 2) groups = base + n * m.inner;
            });
          }
          return { axis, index, scale, fresh, splitGroup, groups, isOut: members.some((m) => m.axis === axis && m.role === 'out') };
        });
      };
      const along = (shape: number[], axis: number, values: Float32Array) => tf.reshape(tf.tensor(values), shape.map((d, a) => (a === axis ? d : 1)));
      for (const key of keys) {
        const axes = axesOf(key, tx.param(key).value.shape);
        const value = tf.tidy(() => {
          let v = tx.param(key).value;
          for (const { axis, index, scale, fresh, splitGroup, groups, isOut } of axes) {
            v = tf.gather(v, tf.tensor1d(index, 'int32'), axis);
            v = tf.mul(v, along(v.shape, axis, scale));
            if (groups > 0) v = tf.mul(v, tf.tensor(weightShares(v.shape, axis, splitGroup, groups, rng), v.shape));
            if (isOut && noise > 0) v = tf.add(v, tf.mul(tf.mul(tf.randomNormal(v.shape, 0, 1, 'float32', rng.seed()), noise), along(v.shape, axis, fresh)));
          }
          return v;
        });
        // A pruned parameter: each copy takes its source's mask (gathered like the value, without
        // the shares), so the copied zeros stay pruned instead of regrowing as live weights.
        const mask = tx.param(key).mask;
        if (mask) {
          const copied = tf.tidy(() => axes.reduce((t, { axis, index }) => tf.gather(t, tf.tensor1d(index, 'int32'), axis), mask));
          tx.setMask(key, copied);
          copied.dispose();
        }
        tx.setParam(key, value);
        value.dispose();
        // Optimizer state: copies take their source's (unscaled) slots, instead of zeros.
        if (optimizerState === 'copy') {
          for (const [name, slot] of tx.paramSlots(key)) {
            const copied = tf.tidy(() => axes.reduce((t, { axis, index }) => tf.gather(t, tf.tensor1d(index, 'int32'), axis), slot));
            tx.setSlot(key, name, copied);
            copied.dispose();
          }
        }
      }
    },
    { technique: 'grow', reason: options.reason ?? `Net2WiderNet: ${count} unit(s) copied into '${group.id}'`, details: { method: 'net2wider', sources } },
  );
  return { sources };
}

/**
 * Random shares for `split: 'random-weights'`: for every coordinate off `axis` and every split
 * group along it, positive random values normalised to sum to 1 over the group; 1 where the
 * position belongs to no group.
 */
function weightShares(shape: number[], axis: number, splitGroup: Int32Array, groups: number, rng: ReturnType<typeof createRng>): Float32Array {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const length = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * length * inner).fill(1);
  const totals = new Float64Array(outer * groups * inner);
  for (let o = 0; o < outer; o++) {
    for (let p = 0; p < length; p++) {
      const g = splitGroup[p];
      if (g < 0) continue;
      for (let q = 0; q < inner; q++) {
        const r = 0.5 + rng.next();
        out[(o * length + p) * inner + q] = r;
        totals[(o * groups + g) * inner + q] += r;
      }
    }
  }
  for (let o = 0; o < outer; o++) {
    for (let p = 0; p < length; p++) {
      const g = splitGroup[p];
      if (g < 0) continue;
      for (let q = 0; q < inner; q++) out[(o * length + p) * inner + q] /= totals[(o * groups + g) * inner + q];
    }
  }
  return out;
}

/**
 * Net2DeeperNet: inserts an identity-initialised layer after `after` (a dense layer on a 2-D
 * activation, or a 'same'-padded conv on NHWC) followed by ReLU. Exact when `after`'s output is
 * non-negative (e.g. it is a ReLU), as in Chen et al.
 *
 * @example
 * deepen(model, 'relu1'); // relu1 -> fc1_deep (identity) -> fc1_deep_relu -> ...
 */
export function deepen(model: Model, after: string, options: { id?: string; kernelSize?: number; activation?: 'relu' | null; reason?: string } = {}): { nodes: string[] } {
  const info = model.validated.infos.get(after);
  if (!info) throw new RsError('UNKNOWN_NODE', `deepen: no node '${after}'.`, { node: after });
  const id = options.id ?? `${after}.deep`;
  const width = info.shape[info.shape.length - 1];
  if (typeof width !== 'number') throw new RsError('SHAPE_MISMATCH', `deepen: '${after}' has no known feature width.`);
  const nodes = [id];
  model.edit(
    (tx) => {
      if (info.shape.length === 2) {
        const eye = tf.eye(width);
        const zeros = tf.zeros([width]);
        try {
          tx.insertNode({ id, op: 'dense', inputs: [after], attrs: { units: width } }, { after, params: { kernel: eye, bias: zeros } });
        } finally {
          tf.dispose([eye, zeros]);
        }
      } else if (info.shape.length === 4) {
        const k = options.kernelSize ?? 3;
        if (k % 2 !== 1) throw new RsError('INVALID_ARGUMENT', `deepen: kernelSize must be odd for an identity conv, got ${k}.`);
        const kernel = tf.tidy(() => {
          const values = new Float32Array(k * k * width * width);
          const centre = (k - 1) / 2;
          for (let c = 0; c < width; c++) values[((centre * k + centre) * width + c) * width + c] = 1;
          return tf.tensor4d(values, [k, k, width, width]);
        });
        const zeros = tf.zeros([width]);
        try {
          tx.insertNode({ id, op: 'conv2d', inputs: [after], attrs: { filters: width, kernelSize: k, padding: 'same' } }, { after, params: { kernel, bias: zeros } });
        } finally {
          tf.dispose([kernel, zeros]);
        }
      } else {
        throw new RsError('SHAPE_MISMATCH', `deepen: '${after}' has shape of rank ${info.shape.length}; dense (rank 2) and conv (rank 4) are supported.`);
      }
      if (options.activation !== null) {
        tx.insertNode({ id: `${id}.relu`, op: 'relu', inputs: [id], attrs: {} }, { after: id });
        nodes.push(`${id}.relu`);
      }
    },
    { technique: 'grow', reason: options.reason ?? `Net2DeeperNet: identity layer after '${after}'`, details: { method: 'net2deeper' } },
  );
  return { nodes };
}
