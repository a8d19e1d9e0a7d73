// Parameter, mask, optimizer-slot and annotation edits.
import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import { splitParamKey } from '../ir/types';
import { checkJsonSafe } from '../ir/json-safe';
import { paramEntry, track, type Draft } from './draft';
import { applyMask } from '../ir/mask';

/** `Transaction.setMeta` on a draft. */
export function setMeta(d: Draft, key: string, value: unknown): void {
  if (typeof key !== 'string' || key.length === 0) throw new RsError('INVALID_ARGUMENT', 'setMeta takes a non-empty string key.');
  const meta = { ...(d.graph.meta ?? {}) };
  if (value === undefined) {
    delete meta[key];
  } else {
    checkJsonSafe(value, `setMeta('${key}')`, 'INVALID_ARGUMENT');
    let copy: unknown;
    try {
      copy = JSON.parse(JSON.stringify(value)) as unknown;
    } catch (error) {
      throw new RsError('INVALID_ARGUMENT', `setMeta('${key}'): the value is not plain JSON (${(error as Error).message}).`, { key });
    }
    meta[key] = copy;
  }
  if (Object.keys(meta).length === 0) delete d.graph.meta;
  else d.graph.meta = meta;
  d.changes.push({ kind: 'setMeta', target: key, summary: value === undefined ? `meta '${key}' deleted` : `meta '${key}' = ${JSON.stringify(meta[key]).slice(0, 120)}` });
}

/** `Transaction.setTrainable` on a draft. */
export function setTrainable(d: Draft, target: string, trainable: boolean): void {
  const keys = d.params.has(target) ? [target] : [...d.params.keys()].filter((k) => splitParamKey(k)[0] === target);
  if (keys.length === 0) throw new RsError('UNKNOWN_PARAM', `setTrainable: '${target}' is neither a parameter nor a node with parameters.`, { target });
  for (const key of keys) d.params.set(key, { ...paramEntry(d, key), trainable });
  d.changes.push({ kind: 'setTrainable', target, summary: `${trainable ? 'unfroze' : 'froze'} ${keys.length} parameter(s)` });
}

/** `Transaction.setMask` on a draft. */
export function setMask(d: Draft, key: string, mask: Tensor | null): void {
  const entry = paramEntry(d, key);
  if (mask === null) {
    d.params.set(key, { ...entry, mask: undefined });
    d.changes.push({ kind: 'setMask', target: key, summary: 'cleared mask' });
    return;
  }
  if (mask.shape.join(',') !== entry.value.shape.join(',')) {
    throw new RsError('SHAPE_MISMATCH', `setMask: mask for '${key}' must have shape ${formatShape(entry.value.shape)}, got ${formatShape(mask.shape)}.`, { param: key });
  }
  // tf.where (not a cast from bool) so the mask is backed by real float32 data everywhere.
  const binary = track(d, tf.tidy(() => tf.where(tf.notEqual(mask, 0), tf.onesLike(entry.value), tf.zerosLike(entry.value))));
  const value = track(d, tf.mul(entry.value, binary));
  d.params.set(key, { ...entry, value, mask: binary });
  const kept = tf.tidy(() => tf.sum(binary).dataSync()[0]);
  d.changes.push({ kind: 'setMask', target: key, summary: `mask keeps ${kept} of ${binary.size} weights` });
}

/** `Transaction.setParam` on a draft. */
export function setParam(d: Draft, key: string, value: Tensor): void {
  const entry = paramEntry(d, key);
  if (value.shape.join(',') !== entry.value.shape.join(',')) {
    throw new RsError('SHAPE_MISMATCH', `setParam: '${key}' has shape ${formatShape(entry.value.shape)}, got ${formatShape(value.shape)}.`, { param: key });
  }
  const copy = track(d, entry.mask ? applyMask(value, entry.mask) : tf.clone(value));
  d.params.set(key, { ...entry, value: copy });
  d.changes.push({ kind: 'setParam', target: key, summary: `set ${formatShape(value.shape)}` });
}

/** `Transaction.paramSlots` on a draft. */
export function paramSlots(d: Draft, key: string): ReadonlyMap<string, Tensor> {
  paramEntry(d, key);
  return new Map(d.slots.get(key) ?? []);
}

/** `Transaction.setSlot` on a draft. */
export function setSlot(d: Draft, key: string, name: string, value: Tensor): void {
  const entry = paramEntry(d, key);
  const slots = d.slots.get(key);
  if (!slots?.has(name)) {
    throw new RsError('INVALID_EDIT', `setSlot: '${key}' has no optimizer slot '${name}'${slots ? ` (it has: ${[...slots.keys()].join(', ') || 'none'})` : ' (the optimizer has not stepped it yet)'}.`, { param: key, slot: name });
  }
  if (value.shape.join(',') !== entry.value.shape.join(',')) {
    throw new RsError('SHAPE_MISMATCH', `setSlot: '${key}' has shape ${formatShape(entry.value.shape)}, got ${formatShape(value.shape)}.`, { param: key });
  }
  const updated = new Map(slots);
  updated.set(name, track(d, tf.clone(value)));
  d.slots.set(key, updated);
  d.changes.push({ kind: 'setSlot', target: key, summary: `set optimizer slot '${name}'` });
}
