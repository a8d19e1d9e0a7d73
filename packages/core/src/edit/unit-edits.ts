// Unit edits (remove, permute, insert units of a group) and the index transform they apply to
// every coupled parameter, its mask and its optimizer slots.
import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import type { ParamSpec } from '../ir/types';
import type { ParamMember, UnitGroup } from '../units/analyze';
import { initialize } from '../rng';
import type { ParamEntry } from '../model';
import { editable, paramEntry, track, type Draft } from './draft';
import { blockStarts, unitPositions } from './positions';
import { binaryMask, refresh } from './refresh';
import { applyMask } from '../ir/mask';

/** How new units' weights start. */
export interface InsertUnitsOptions {
  /** Index before which the new units go (default: after the last unit). */
  at?: number;
  /** Weights of the new units themselves (`out` members): `init` (the op's initializer, default) or `zeros`. */
  incoming?: 'init' | 'zeros';
  /** Weights that read the new units (`in` members): `zeros` (default, preserves the function) or `init`. */
  outgoing?: 'zeros' | 'init';
  /**
   * Exact values of the new slices, by parameter key: a tensor shaped like the parameter with
   * the unit axis sized to the inserted positions. Overrides `incoming`/`outgoing` for that key.
   */
  values?: Record<string, Tensor>;
  /**
   * Element masks (1 keep, 0 pruned) of the new slices, by parameter key, shaped like the
   * matching `values` entry (the parameter's shape with the unit axis sized to the inserted
   * positions); every entry must be 0 or 1. Use it when the new units copy weights that carry a
   * mask, so the copies keep the source's pruned positions at zero. The new slices' values are
   * multiplied by it. A key whose parameter has no mask yet gets one (all ones on the existing
   * part). Default: new slices of a masked parameter get an all-ones mask (fresh weights).
   */
  masks?: Record<string, Tensor>;
  /**
   * Accept that the insertion changes the model's function. Needed for a group that an op
   * normalises across (`group.insertChangesFunction`, e.g. the residual stream of a transformer
   * under `layerNorm`): without it such an insertion is refused with `FUNCTION_NOT_PRESERVED`
   * and nothing changes. Default false.
   */
  allowFunctionChange?: boolean;
}

type Axis = { key: string; axis: number; members: ParamMember[] };

function checkIndex(group: UnitGroup, u: unknown, what: string): number {
  if (typeof u !== 'number' || !Number.isInteger(u) || u < 0 || u >= group.size) {
    throw new RsError('UNIT_INDEX_OUT_OF_RANGE', `${what}: unit index ${String(u)} is out of range for group '${group.id}' with ${group.size} units (valid: 0..${group.size - 1}).`, {
      group: group.id,
      index: u,
      size: group.size,
    });
  }
  return u;
}

function byAxis(group: UnitGroup): Axis[] {
  const map = new Map<string, Axis>();
  for (const m of group.params) {
    const id = `${m.param}#${m.axis}`;
    const entry = map.get(id) ?? { key: m.param, axis: m.axis, members: [] };
    entry.members.push(m);
    map.set(id, entry);
  }
  return [...map.values()];
}

/**
 * Applies an index transform along one axis to a parameter, its mask and its optimizer slots.
 * `extra.mask` (the appended slice's mask) gives the parameter a mask if it had none.
 */
export function transformAxis(d: Draft, key: string, axis: number, index: number[], extra?: { value: Tensor; maskFill: number; mask?: Tensor }): void {
  const entry = paramEntry(d, key);
  const apply = (t: Tensor, fill?: Tensor): Tensor =>
    track(d, 
      tf.tidy(() => {
        const source = fill ? tf.concat([t, fill], axis) : t;
        return tf.gather(source, tf.tensor1d(index, 'int32'), axis);
      }),
    );
  const fillLike = (value: number): Tensor | undefined => (extra ? tf.fill(extra.value.shape, value) : undefined);
  const next: ParamEntry = { ...entry, value: apply(entry.value, extra?.value) };
  if (extra?.mask) {
    const base = entry.mask ?? tf.onesLike(entry.value);
    next.mask = apply(base, extra.mask);
    if (base !== entry.mask) base.dispose();
    next.value = track(d, applyMask(next.value, next.mask));
  } else if (entry.mask) {
    const fill = fillLike(extra?.maskFill ?? 1);
    next.mask = apply(entry.mask, fill);
    fill?.dispose();
  }
  d.params.set(key, next);
  const slots = d.slots.get(key);
  if (slots) {
    const updated = new Map<string, Tensor>();
    for (const [name, t] of slots) {
      const fill = fillLike(0);
      updated.set(name, apply(t, fill));
      fill?.dispose();
    }
    d.slots.set(key, updated);
  }
}

/** `Transaction.removeUnits` on a draft. */
export function removeUnits(d: Draft, groupId: string, indices: number[]): void {
  const group = editable(d, groupId);
  if (!Array.isArray(indices)) throw new RsError('INVALID_ARGUMENT', 'removeUnits takes an array of unit indices.');
  const remove = new Set<number>();
  for (const u of indices) {
    const index = checkIndex(group, u, 'removeUnits');
    if (remove.has(index)) throw new RsError('DUPLICATE_UNIT_INDEX', `removeUnits: unit ${index} of group '${group.id}' is listed twice.`, { group: group.id, index });
    remove.add(index);
  }
  if (remove.size === 0) return;
  if (remove.size >= group.size) {
    throw new RsError('REMOVE_ALL_UNITS', `removeUnits would remove all ${group.size} units of group '${group.id}'; at least one must remain (remove the node instead).`, {
      group: group.id,
    });
  }
  for (const { key, axis, members } of byAxis(group)) {
    const length = paramEntry(d, key).value.shape[axis];
    const drop = new Set<number>();
    for (const m of members) for (const u of remove) for (const p of unitPositions(m, u)) drop.add(p);
    const keep: number[] = [];
    for (let p = 0; p < length; p++) if (!drop.has(p)) keep.push(p);
    transformAxis(d, key, axis, keep);
  }
  const sorted = [...remove].sort((a, b) => a - b);
  d.changes.push({
    kind: 'removeUnits',
    target: group.id,
    summary: `removed ${remove.size} of ${group.size} units [${sorted.slice(0, 20).join(', ')}${sorted.length > 20 ? ', ...' : ''}]`,
    size: { before: group.size, after: group.size - remove.size },
  });
  refresh(d, group);
}

/** `Transaction.permuteUnits` on a draft. */
export function permuteUnits(d: Draft, groupId: string, order: number[]): void {
  const group = editable(d, groupId);
  const seen = new Set<number>();
  if (!Array.isArray(order) || order.length !== group.size) {
    throw new RsError('INVALID_PERMUTATION', `permuteUnits: group '${group.id}' has ${group.size} units, the order lists ${Array.isArray(order) ? order.length : 'no'} entries.`, { group: group.id });
  }
  for (const u of order) {
    const index = checkIndex(group, u, 'permuteUnits');
    if (seen.has(index)) throw new RsError('INVALID_PERMUTATION', `permuteUnits: unit ${index} appears twice in the order.`, { group: group.id, index });
    seen.add(index);
  }
  for (const { key, axis, members } of byAxis(group)) {
    const length = paramEntry(d, key).value.shape[axis];
    const source = Array.from({ length }, (_, p) => p);
    for (const m of members) {
      for (let u = 0; u < group.size; u++) {
        const to = unitPositions(m, u);
        const from = unitPositions(m, order[u]);
        to.forEach((p, k) => (source[p] = from[k]));
      }
    }
    transformAxis(d, key, axis, source);
  }
  d.changes.push({ kind: 'permuteUnits', target: group.id, summary: `permuted ${group.size} units` });
  refresh(d, group);
}

/**
 * The index transform that inserts `count` units before unit `at` along one parameter axis
 * (positions >= `length` are the appended slice), and the slice's size along the axis.
 */
function insertionIndex(members: ParamMember[], length: number, at: number, count: number): { index: number[]; total: number } {
  const tokensAt = new Map<number, number[]>();
  let total = 0;
  for (const m of members) {
    for (const start of blockStarts(m)) {
      const point = start + at * m.inner;
      const list = tokensAt.get(point) ?? [];
      for (let t = 0; t < count * m.inner; t++) list.push(total++);
      tokensAt.set(point, list);
    }
  }
  const index: number[] = [];
  for (let p = 0; p <= length; p++) {
    for (const t of tokensAt.get(p) ?? []) index.push(length + t);
    if (p < length) index.push(p);
  }
  return { index, total };
}

/** Values of the inserted slice of `key`: given, zeros or initialised (see `InsertUnitsOptions`). */
function sliceValues(d: Draft, key: string, members: ParamMember[], sliceShape: number[], options: InsertUnitsOptions): Tensor {
  const provided = options.values?.[key];
  if (provided) {
    if (provided.shape.join(',') !== sliceShape.join(',')) {
      throw new RsError('SHAPE_MISMATCH', `insertUnits: values for '${key}' must have shape ${formatShape(sliceShape)}, got ${formatShape(provided.shape)}.`);
    }
    return provided;
  }
  // All members of one parameter axis share a role in practice; the first decides.
  const role = members[0].role;
  const zero = role === 'out' ? options.incoming === 'zeros' : options.outgoing !== 'init' && paramEntry(d, key).value.rank >= 2;
  const spec = d.validated.paramSpecs.get(key) as ParamSpec;
  return zero ? tf.zeros(sliceShape) : initialize(spec.init, sliceShape, d.rng);
}

/** Inserts the new units' slice into one parameter axis (with its mask, if given). */
function insertAlongAxis(d: Draft, key: string, axis: number, members: ParamMember[], at: number, count: number, options: InsertUnitsOptions): void {
  const entry = paramEntry(d, key);
  const length = entry.value.shape[axis];
  const { index, total } = insertionIndex(members, length, at, count);
  const sliceShape = [...entry.value.shape];
  sliceShape[axis] = total;
  const values = sliceValues(d, key, members, sliceShape, options);
  const givenMask = options.masks?.[key];
  let mask: Tensor | undefined;
  try {
    if (givenMask) mask = binaryMask('insertUnits', key, givenMask, sliceShape);
    transformAxis(d, key, axis, index, { value: values, maskFill: 1, mask });
  } finally {
    mask?.dispose();
    if (values !== options.values?.[key]) values.dispose();
  }
}

/** `Transaction.insertUnits` on a draft. */
export function insertUnits(d: Draft, groupId: string, count: number, options: InsertUnitsOptions = {}): void {
  const group = editable(d, groupId);
  if (group.insertChangesFunction && options.allowFunctionChange !== true) {
    throw new RsError(
      'FUNCTION_NOT_PRESERVED',
      `insertUnits: inserting units into group '${group.id}' would change the model's function: ${group.insertChangesFunction.join('; ')}. ` +
        'Pass { allowFunctionChange: true } to insert anyway (e.g. then retrain), or grow a group that no op normalises across.',
      { group: group.id, reasons: group.insertChangesFunction },
    );
  }
  if (!Number.isInteger(count) || count < 1) throw new RsError('INVALID_ARGUMENT', `insertUnits: count must be a positive integer, got ${String(count)}.`);
  const at = options.at ?? group.size;
  if (!Number.isInteger(at) || at < 0 || at > group.size) {
    throw new RsError('UNIT_INDEX_OUT_OF_RANGE', `insertUnits: position ${String(at)} is out of range for group '${group.id}' (0..${group.size}).`, { group: group.id, index: at });
  }
  const axes = byAxis(group);
  for (const key of [...Object.keys(options.values ?? {}), ...Object.keys(options.masks ?? {})]) {
    if (!axes.some((a) => a.key === key)) {
      throw new RsError('UNKNOWN_PARAM', `insertUnits: '${key}' is not a parameter of group '${group.id}' (members: ${axes.map((a) => a.key).join(', ')}).`);
    }
  }
  for (const { key, axis, members } of axes) insertAlongAxis(d, key, axis, members, at, count, options);
  d.changes.push({
    kind: 'insertUnits',
    target: group.id,
    summary: `inserted ${count} unit(s) at ${at}${group.insertChangesFunction ? ' (function changed: allowFunctionChange)' : ''}`,
    size: { before: group.size, after: group.size + count },
  });
  refresh(d, group);
}
