import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import type { GraphDef, NodeDef, ParamSpec } from '../ir/types';
import { paramKey, splitParamKey } from '../ir/types';
import { validateGraph, type ValidatedGraph } from '../ir/validate';
import { checkJsonSafe } from '../ir/json-safe';
import { analyzeUnits, type ParamMember, type UnitAnalysis, type UnitGroup } from '../units/analyze';
import { createRng, initialize } from '../rng';
import type { ModelCounts } from '../count';
import type { Model, ModelState, ParamEntry } from '../model';
import type { EditChange, JournalEntry, NodeRecord, StructureBefore } from './journal';
import { blockStarts, unitPositions } from './positions';

/** Who edits and why; recorded in the journal. */
export interface EditMeta {
  technique?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

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

export interface InsertNodeOptions {
  /**
   * Rewire: every consumer of this id (and graph outputs naming it) reads the new node instead.
   * The new node itself should read `after`.
   */
  after?: string;
  /** Values for the new node's parameters, by name (`kernel`); others are initialised. */
  params?: Record<string, Tensor>;
  /**
   * Element masks (1 keep, 0 pruned) for the new node's parameters, by name, each shaped like
   * its parameter and holding only 0 and 1: for a node whose `params` copy masked weights. The
   * parameter's value is multiplied by its mask. Default: no mask (dense parameters).
   */
  masks?: Record<string, Tensor>;
}

type Axis = { key: string; axis: number; members: ParamMember[] };

/** A float32 copy of `mask` after checking its shape and that it holds only 0 and 1. */
function binaryMask(what: string, key: string, mask: Tensor, shape: readonly number[]): Tensor {
  if (mask.shape.join(',') !== shape.join(',')) {
    throw new RsError('SHAPE_MISMATCH', `${what}: mask for '${key}' must have shape ${formatShape(shape)}, got ${formatShape(mask.shape)}.`, { param: key });
  }
  const bad = tf.tidy(() => tf.sum(tf.cast(tf.logicalAnd(tf.notEqual(mask, 0), tf.notEqual(mask, 1)), 'float32')).dataSync()[0]);
  if (bad > 0) throw new RsError('INVALID_ARGUMENT', `${what}: mask for '${key}' must hold only 0 and 1; ${bad} entr${bad === 1 ? 'y is' : 'ies are'} neither.`, { param: key });
  return tf.cast(mask, 'float32');
}

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
 * The edit API passed to `model.edit(tx => ...)`. Each primitive is checked at once; the whole
 * graph is validated again before commit.
 */
export class Transaction {
  private graph: GraphDef;
  private readonly params: Map<string, ParamEntry>;
  private readonly slots: Map<string, Map<string, Tensor>>;
  private readonly created = new Set<Tensor>();
  readonly changes: EditChange[] = [];
  private validated: ValidatedGraph;
  private analysis?: UnitAnalysis;
  private readonly model: Model;
  private readonly rng;
  closed = false;

  constructor(model: Model) {
    this.model = model;
    const state = model.internalState;
    this.graph = JSON.parse(JSON.stringify(state.graph)) as GraphDef;
    this.params = new Map([...state.params].map(([k, e]) => [k, { ...e }]));
    this.slots = new Map([...state.slots].map(([k, s]) => [k, new Map(s)]));
    this.validated = model.validated;
    this.rng = createRng(model.rng.seed());
  }

  private open(): void {
    if (this.closed) throw new RsError('TRANSACTION_CLOSED', 'This transaction has ended; make edits inside the model.edit callback.');
  }

  private track<T extends Tensor>(t: T): T {
    tf.keep(t);
    this.created.add(t);
    return t;
  }

  /** Unit groups of the graph as edited so far. */
  groups(): UnitGroup[] {
    this.analysis ??= analyzeUnits(this.graph, this.model.registry, this.validated.infos);
    return this.analysis.groups;
  }

  /** A group by id (`fc1`, `attn:heads`) in the graph as edited so far. */
  group(id: string): UnitGroup {
    this.groups();
    const group = this.analysis?.byId.get(id);
    if (!group) {
      throw new RsError('UNKNOWN_GROUP', `No unit group '${id}'. Editable groups: ${this.groups().filter((g) => !g.frozen).map((g) => g.id).join(', ') || 'none'}.`, { group: id });
    }
    return group;
  }

  /** The current value of a parameter in this transaction. */
  param(key: string): ParamEntry {
    const entry = this.params.get(key);
    if (!entry) throw new RsError('UNKNOWN_PARAM', `No parameter '${key}'.`, { param: key });
    return entry;
  }

  private editable(groupId: string): UnitGroup {
    const group = this.group(groupId);
    if (group.frozen) {
      throw new RsError('FROZEN_GROUP', `Group '${group.id}' cannot be edited: ${group.frozen.join('; ')}.`, { group: group.id, reasons: group.frozen });
    }
    return group;
  }

  /**
   * Applies an index transform along one axis to a parameter, its mask and its optimizer slots.
   * `extra.mask` (the appended slice's mask) gives the parameter a mask if it had none.
   */
  private transformAxis(key: string, axis: number, index: number[], extra?: { value: Tensor; maskFill: number; mask?: Tensor }): void {
    const entry = this.param(key);
    const apply = (t: Tensor, fill?: Tensor): Tensor =>
      this.track(
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
      next.value = this.track(tf.mul(next.value, next.mask));
    } else if (entry.mask) {
      const fill = fillLike(extra?.maskFill ?? 1);
      next.mask = apply(entry.mask, fill);
      fill?.dispose();
    }
    this.params.set(key, next);
    const slots = this.slots.get(key);
    if (slots) {
      const updated = new Map<string, Tensor>();
      for (const [name, t] of slots) {
        const fill = fillLike(0);
        updated.set(name, apply(t, fill));
        fill?.dispose();
      }
      this.slots.set(key, updated);
    }
  }

  /**
   * Removes units (neurons, channels, heads) from a group: every coupled parameter shrinks.
   *
   * @example
   * tx.removeUnits('fc1', [3, 7]);
   */
  removeUnits(groupId: string, indices: number[]): this {
    this.open();
    const group = this.editable(groupId);
    if (!Array.isArray(indices)) throw new RsError('INVALID_ARGUMENT', 'removeUnits takes an array of unit indices.');
    const remove = new Set<number>();
    for (const u of indices) {
      const index = checkIndex(group, u, 'removeUnits');
      if (remove.has(index)) throw new RsError('DUPLICATE_UNIT_INDEX', `removeUnits: unit ${index} of group '${group.id}' is listed twice.`, { group: group.id, index });
      remove.add(index);
    }
    if (remove.size === 0) return this;
    if (remove.size >= group.size) {
      throw new RsError('REMOVE_ALL_UNITS', `removeUnits would remove all ${group.size} units of group '${group.id}'; at least one must remain (remove the node instead).`, {
        group: group.id,
      });
    }
    for (const { key, axis, members } of byAxis(group)) {
      const length = this.param(key).value.shape[axis];
      const drop = new Set<number>();
      for (const m of members) for (const u of remove) for (const p of unitPositions(m, u)) drop.add(p);
      const keep: number[] = [];
      for (let p = 0; p < length; p++) if (!drop.has(p)) keep.push(p);
      this.transformAxis(key, axis, keep);
    }
    const sorted = [...remove].sort((a, b) => a - b);
    this.changes.push({
      kind: 'removeUnits',
      target: group.id,
      summary: `removed ${remove.size} of ${group.size} units [${sorted.slice(0, 20).join(', ')}${sorted.length > 20 ? ', ...' : ''}]`,
      size: { before: group.size, after: group.size - remove.size },
    });
    this.refresh(group);
    return this;
  }

  /**
   * Reorders a group's units: new unit `i` is old unit `order[i]`. Preserves the function.
   *
   * @example
   * tx.permuteUnits('fc1', [2, 0, 1, ...]);
   */
  permuteUnits(groupId: string, order: number[]): this {
    this.open();
    const group = this.editable(groupId);
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
      const length = this.param(key).value.shape[axis];
      const source = Array.from({ length }, (_, p) => p);
      for (const m of members) {
        for (let u = 0; u < group.size; u++) {
          const to = unitPositions(m, u);
          const from = unitPositions(m, order[u]);
          to.forEach((p, k) => (source[p] = from[k]));
        }
      }
      this.transformAxis(key, axis, source);
    }
    this.changes.push({ kind: 'permuteUnits', target: group.id, summary: `permuted ${group.size} units` });
    this.refresh(group);
    return this;
  }

  /**
   * Adds `count` units to a group. By default the new units' own weights are initialised and
   * the weights reading them are zero, so the model's function is unchanged.
   *
   * @example
   * tx.insertUnits('fc1', 16);                       // function-preserving
   * tx.insertUnits('fc1', 1, { values: { 'fc2/kernel': outgoingRow } });
   * tx.insertUnits('fc1', 1, { values: { 'fc1/kernel': copy }, masks: { 'fc1/kernel': copyMask } });
   * tx.insertUnits('position', 8, { allowFunctionChange: true }); // charTransformer's residual stream, under layerNorm
   *
   * A group that an op normalises across (`group.insertChangesFunction`) is refused with
   * `FUNCTION_NOT_PRESERVED` unless `allowFunctionChange` is set: the new units enter the
   * op's statistics, so no choice of weights keeps the function.
   */
  insertUnits(groupId: string, count: number, options: InsertUnitsOptions = {}): this {
    this.open();
    const group = this.editable(groupId);
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
    const given = options.values ?? {};
    const givenMasks = options.masks ?? {};
    const axes = byAxis(group);
    for (const key of [...Object.keys(given), ...Object.keys(givenMasks)]) {
      if (!axes.some((a) => a.key === key)) {
        throw new RsError('UNKNOWN_PARAM', `insertUnits: '${key}' is not a parameter of group '${group.id}' (members: ${axes.map((a) => a.key).join(', ')}).`);
      }
    }
    for (const { key, axis, members } of axes) {
      const entry = this.param(key);
      const length = entry.value.shape[axis];
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
      const sliceShape = [...entry.value.shape];
      sliceShape[axis] = total;
      const spec = this.validated.paramSpecs.get(key) as ParamSpec;
      let values: Tensor;
      if (given[key]) {
        const provided = given[key];
        if (provided.shape.join(',') !== sliceShape.join(',')) {
          throw new RsError('SHAPE_MISMATCH', `insertUnits: values for '${key}' must have shape ${formatShape(sliceShape)}, got ${formatShape(provided.shape)}.`);
        }
        values = provided;
      } else {
        // All members of one parameter axis share a role in practice; the first decides.
        const role = members[0].role;
        const zero =
          role === 'out' ? options.incoming === 'zeros' : options.outgoing !== 'init' && entry.value.rank >= 2;
        values = zero ? tf.zeros(sliceShape) : initialize(spec.init, sliceShape, this.rng);
      }
      let mask: Tensor | undefined;
      try {
        if (givenMasks[key]) mask = binaryMask('insertUnits', key, givenMasks[key], sliceShape);
        this.transformAxis(key, axis, index, { value: values, maskFill: 1, mask });
      } finally {
        mask?.dispose();
        if (values !== given[key]) values.dispose();
      }
    }
    this.changes.push({
      kind: 'insertUnits',
      target: group.id,
      summary: `inserted ${count} unit(s) at ${at}${group.insertChangesFunction ? ' (function changed: allowFunctionChange)' : ''}`,
      size: { before: group.size, after: group.size + count },
    });
    this.refresh(group);
    return this;
  }

  /**
   * Adds a node. With `after`, consumers of `after` are rewired to read the new node.
   *
   * @example
   * tx.insertNode({ id: 'fc1b', op: 'dense', inputs: ['relu1'], attrs: { units: 300 } },
   *               { after: 'relu1', params: { kernel: eye, bias: zeros } });
   * tx.insertNode({ id: 'moe', op: 'moe', inputs: ['ln'], attrs }, { params: { w1 }, masks: { w1: w1Mask } });
   */
  insertNode(node: NodeDef, options: InsertNodeOptions = {}): this {
    this.open();
    checkJsonSafe(node, `insertNode '${String(node?.id)}'`);
    const copy: NodeDef = JSON.parse(JSON.stringify({ ...node, attrs: node.attrs ?? {}, inputs: node.inputs ?? [] })) as NodeDef;
    let before: StructureBefore = {};
    if (options.after !== undefined) {
      const after = options.after;
      if (!this.graph.nodes.some((n) => n.id === after) && !this.graph.inputs.some((i) => i.id === after)) {
        throw new RsError('UNKNOWN_NODE', `insertNode: 'after' names '${after}', which is not in the graph.`, { node: after });
      }
      before = this.rewire(after, copy.id);
    }
    const at = this.graph.nodes.findIndex((n) => n.inputs.includes(copy.id));
    if (at >= 0) this.graph.nodes.splice(at, 0, copy);
    else this.graph.nodes.push(copy);
    this.changes.push({ kind: 'insertNode', target: copy.id, summary: `inserted ${copy.op} '${copy.id}'${options.after ? ` after '${options.after}'` : ''}`, before });
    this.refresh(undefined, copy.id, options.params, options.masks);
    return this;
  }

  /**
   * Removes a node; its consumers read `bypass` instead (default: the node's first input).
   *
   * @example
   * tx.removeNode('block2', { bypass: 'block1' });
   */
  removeNode(id: string, options: { bypass?: string } = {}): this {
    this.open();
    const index = this.graph.nodes.findIndex((n) => n.id === id);
    if (index < 0) throw new RsError('UNKNOWN_NODE', `removeNode: no node '${id}'.`, { node: id });
    const node = this.graph.nodes[index];
    const bypass = options.bypass ?? node.inputs[0];
    if (bypass === undefined) throw new RsError('INVALID_EDIT', `removeNode: node '${id}' has no input to bypass to; pass { bypass }.`, { node: id });
    const record = this.nodeRecord(index);
    this.graph.nodes.splice(index, 1);
    const before = { node: record, ...this.rewire(id, bypass) };
    this.changes.push({ kind: 'removeNode', target: id, summary: `removed ${node.op} '${id}', consumers now read '${bypass}'`, before });
    this.refresh();
    return this;
  }

  /**
   * Replaces a node's op/attrs/inputs (same id unless `node.id` differs). Parameters of the
   * old node that the new one declares with the same shape are kept (with their masks), others
   * re-initialised. `options.params` gives values by parameter name; `options.masks` element
   * masks (1 keep, 0 pruned; same shape as the parameter, only 0 and 1) by name, which replace
   * any kept mask and are applied to the value.
   */
  replaceNode(id: string, node: Omit<NodeDef, 'id'> & { id?: string }, options: { params?: Record<string, Tensor>; masks?: Record<string, Tensor> } = {}): this {
    this.open();
    const index = this.graph.nodes.findIndex((n) => n.id === id);
    if (index < 0) throw new RsError('UNKNOWN_NODE', `replaceNode: no node '${id}'.`, { node: id });
    const old = this.graph.nodes[index];
    const record = this.nodeRecord(index);
    checkJsonSafe(node, `replaceNode '${id}'`);
    const next: NodeDef = JSON.parse(JSON.stringify({ ...old, ...node, id: node.id ?? id })) as NodeDef;
    this.graph.nodes[index] = next;
    const before: StructureBefore = next.id === id ? { node: record } : { node: record, replacement: next.id, ...this.rewire(id, next.id) };
    if (next.op !== old.op || next.id !== id) {
      for (const key of [...this.params.keys()]) if (splitParamKey(key)[0] === id) this.dropParam(key);
    }
    this.changes.push({ kind: 'replaceNode', target: id, summary: `replaced ${old.op} '${id}' by ${next.op} '${next.id}'`, before });
    this.refresh(undefined, next.id, options.params, options.masks);
    return this;
  }

  /**
   * Sets the graph's outputs (node or input ids, in order), e.g. to add a head per task.
   * `model.apply` returns the first; `model.run` returns all.
   *
   * @example
   * tx.setOutputs([...model.graph.outputs, 'task1/head']);
   */
  setOutputs(ids: string[]): this {
    this.open();
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string')) {
      throw new RsError('INVALID_ARGUMENT', 'setOutputs takes a non-empty array of node ids.');
    }
    for (const id of ids) {
      if (!this.graph.nodes.some((n) => n.id === id) && !this.graph.inputs.some((i) => i.id === id)) {
        throw new RsError('UNKNOWN_NODE', `setOutputs: '${id}' is not a node or input of the graph.`, { node: id });
      }
    }
    const outputs = [...this.graph.outputs];
    this.graph.outputs = [...ids];
    this.changes.push({ kind: 'setOutputs', target: ids.join(','), summary: `outputs [${outputs.join(', ')}] -> [${ids.join(', ')}]`, before: { outputs } });
    this.refresh();
    return this;
  }

  /**
   * Sets (or, with `undefined`, deletes) a JSON annotation of the graph (`graph.meta[key]`), such
   * as a calibrated early-exit policy that must travel with the saved model. The value must be
   * plain JSON (it is stored as a copy); executors ignore annotations.
   *
   * @example
   * tx.setMeta('dynamic.exitPolicy', { rule: 'entropy', thresholds: [0.2] });
   */
  setMeta(key: string, value: unknown): this {
    this.open();
    if (typeof key !== 'string' || key.length === 0) throw new RsError('INVALID_ARGUMENT', 'setMeta takes a non-empty string key.');
    const meta = { ...(this.graph.meta ?? {}) };
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
    if (Object.keys(meta).length === 0) delete this.graph.meta;
    else this.graph.meta = meta;
    this.changes.push({ kind: 'setMeta', target: key, summary: value === undefined ? `meta '${key}' deleted` : `meta '${key}' = ${JSON.stringify(meta[key]).slice(0, 120)}` });
    return this;
  }

  /** Freezes or unfreezes a parameter (`fc1/kernel`) or all parameters of a node (`fc1`). */
  setTrainable(target: string, trainable: boolean): this {
    this.open();
    const keys = this.params.has(target) ? [target] : [...this.params.keys()].filter((k) => splitParamKey(k)[0] === target);
    if (keys.length === 0) throw new RsError('UNKNOWN_PARAM', `setTrainable: '${target}' is neither a parameter nor a node with parameters.`, { target });
    for (const key of keys) this.params.set(key, { ...this.param(key), trainable });
    this.changes.push({ kind: 'setTrainable', target, summary: `${trainable ? 'unfroze' : 'froze'} ${keys.length} parameter(s)` });
    return this;
  }

  /**
   * Sets an element mask (1 keep, 0 pruned) on a parameter, or clears it with `null`. Masked
   * weights are zeroed now and kept at zero by training.
   */
  setMask(key: string, mask: Tensor | null): this {
    this.open();
    const entry = this.param(key);
    if (mask === null) {
      this.params.set(key, { ...entry, mask: undefined });
      this.changes.push({ kind: 'setMask', target: key, summary: 'cleared mask' });
      return this;
    }
    if (mask.shape.join(',') !== entry.value.shape.join(',')) {
      throw new RsError('SHAPE_MISMATCH', `setMask: mask for '${key}' must have shape ${formatShape(entry.value.shape)}, got ${formatShape(mask.shape)}.`, { param: key });
    }
    // tf.where (not a cast from bool) so the mask is backed by real float32 data everywhere.
    const binary = this.track(tf.tidy(() => tf.where(tf.notEqual(mask, 0), tf.onesLike(entry.value), tf.zerosLike(entry.value))));
    const value = this.track(tf.mul(entry.value, binary));
    this.params.set(key, { ...entry, value, mask: binary });
    const kept = tf.tidy(() => tf.sum(binary).dataSync()[0]);
    this.changes.push({ kind: 'setMask', target: key, summary: `mask keeps ${kept} of ${binary.size} weights` });
    return this;
  }

  /** Replaces a parameter's value (same shape). */
  setParam(key: string, value: Tensor): this {
    this.open();
    const entry = this.param(key);
    if (value.shape.join(',') !== entry.value.shape.join(',')) {
      throw new RsError('SHAPE_MISMATCH', `setParam: '${key}' has shape ${formatShape(entry.value.shape)}, got ${formatShape(value.shape)}.`, { param: key });
    }
    const copy = this.track(entry.mask ? tf.mul(value, entry.mask) : tf.clone(value));
    this.params.set(key, { ...entry, value: copy });
    this.changes.push({ kind: 'setParam', target: key, summary: `set ${formatShape(value.shape)}` });
    return this;
  }

  /**
   * The optimizer slots (e.g. Adam's `m` and `v`) of a parameter inside the transaction, by
   * name; empty when the optimizer has not stepped it yet. Slots follow unit edits (removed
   * units' entries go, inserted units' start at 0): read them after such an edit to see that.
   */
  paramSlots(key: string): ReadonlyMap<string, Tensor> {
    this.param(key);
    return new Map(this.slots.get(key) ?? []);
  }

  /**
   * Replaces an existing optimizer slot of a parameter (same shape), e.g. to give units copied
   * by a growth step the optimizer state of the units they copy. Rolled back with the edit.
   *
   * @example
   * tx.setSlot('fc1/kernel', 'v', copiedSecondMoments);
   */
  setSlot(key: string, name: string, value: Tensor): this {
    this.open();
    const entry = this.param(key);
    const slots = this.slots.get(key);
    if (!slots?.has(name)) {
      throw new RsError('INVALID_EDIT', `setSlot: '${key}' has no optimizer slot '${name}'${slots ? ` (it has: ${[...slots.keys()].join(', ') || 'none'})` : ' (the optimizer has not stepped it yet)'}.`, { param: key, slot: name });
    }
    if (value.shape.join(',') !== entry.value.shape.join(',')) {
      throw new RsError('SHAPE_MISMATCH', `setSlot: '${key}' has shape ${formatShape(entry.value.shape)}, got ${formatShape(value.shape)}.`, { param: key });
    }
    const updated = new Map(slots);
    updated.set(name, this.track(tf.clone(value)));
    this.slots.set(key, updated);
    this.changes.push({ kind: 'setSlot', target: key, summary: `set optimizer slot '${name}'` });
    return this;
  }

  private dropParam(key: string): void {
    this.params.delete(key);
    this.slots.delete(key);
  }

  /** The journal's record of the node at `index` of the graph as edited so far. */
  private nodeRecord(index: number): NodeRecord {
    const node = this.graph.nodes[index];
    const record: NodeRecord = { id: node.id, op: node.op, inputs: [...node.inputs], shape: [...(this.validated.infos.get(node.id)?.shape ?? [])] };
    if (index > 0) record.previous = this.graph.nodes[index - 1].id;
    return record;
  }

  /** Makes every reader of `from` (nodes and graph outputs) read `to`; returns what it found. */
  private rewire(from: string, to: string): StructureBefore {
    const before: StructureBefore = {};
    const rewired = this.graph.nodes.filter((n) => n.inputs.includes(from));
    if (rewired.length > 0) before.rewired = rewired.map((n) => ({ id: n.id, inputs: [...n.inputs] }));
    for (const n of rewired) n.inputs = n.inputs.map((i) => (i === from ? to : i));
    if (this.graph.outputs.includes(from)) {
      before.outputs = [...this.graph.outputs];
      this.graph.outputs = this.graph.outputs.map((o) => (o === from ? to : o));
    }
    return before;
  }

  /**
   * Re-derives attrs from parameter shapes, validates the graph, and reconciles parameters
   * with the validated specs (new nodes get initialised parameters; removed nodes lose theirs).
   * `masks` (by parameter name of `newNode`) become those parameters' masks.
   */
  private refresh(resized?: UnitGroup, newNode?: string, given?: Record<string, Tensor>, masks?: Record<string, Tensor>): void {
    if (resized) {
      const nodes = new Set(resized.params.map((m) => splitParamKey(m.param)[0]));
      for (const node of this.graph.nodes) {
        if (!nodes.has(node.id)) continue;
        const schema = this.model.registry.get(node.op);
        if (!schema.syncAttrs) continue;
        const shapes: Record<string, number[]> = {};
        for (const [key, entry] of this.params) {
          const [owner, name] = splitParamKey(key);
          if (owner === node.id) shapes[name] = entry.value.shape;
        }
        const inputs = node.inputs.map((i) => this.validated.infos.get(i)).filter((x) => x !== undefined);
        node.attrs = schema.syncAttrs(node.attrs, shapes, inputs) as Record<string, unknown>;
      }
    }
    this.validated = validateGraph(this.graph, this.model.registry);
    this.analysis = undefined;
    const givenNames = new Set(Object.keys(given ?? {}));
    for (const [key, spec] of this.validated.paramSpecs) {
      const [node, name] = splitParamKey(key);
      const provided = node === newNode ? given?.[name] : undefined;
      if (provided) {
        givenNames.delete(name);
        if (provided.shape.join(',') !== spec.shape.join(',')) {
          throw new RsError('SHAPE_MISMATCH', `Parameter '${key}' needs shape ${formatShape(spec.shape)}, got ${formatShape(provided.shape)}.`, { param: key });
        }
        this.dropParam(key);
        this.params.set(key, { value: this.track(tf.clone(provided)), trainable: spec.trainable ?? spec.role !== 'state', role: spec.role ?? 'weight' });
        continue;
      }
      const entry = this.params.get(key);
      if (!entry) {
        this.params.set(key, {
          value: this.track(initialize(spec.init, spec.shape, this.rng)),
          trainable: spec.trainable ?? spec.role !== 'state',
          role: spec.role ?? 'weight',
        });
      } else if (entry.value.shape.join(',') !== spec.shape.join(',')) {
        throw new RsError('SHAPE_MISMATCH', `After the edit, parameter '${key}' has shape ${formatShape(entry.value.shape)} but node '${node}' needs ${formatShape(spec.shape)}.`, {
          param: key,
        });
      }
    }
    if (givenNames.size > 0) {
      throw new RsError('UNKNOWN_PARAM', `Node '${newNode}' has no parameter(s) ${[...givenNames].join(', ')}.`, { node: newNode });
    }
    for (const [name, provided] of Object.entries(masks ?? {})) {
      const key = paramKey(newNode as string, name);
      const spec = this.validated.paramSpecs.get(key);
      if (!spec) throw new RsError('UNKNOWN_PARAM', `Node '${newNode}' has no parameter '${name}' to mask.`, { node: newNode, param: name });
      const entry = this.param(key);
      const mask = this.track(binaryMask(`Node '${newNode}'`, key, provided, spec.shape));
      this.params.set(key, { ...entry, value: this.track(tf.mul(entry.value, mask)), mask });
    }
    for (const key of [...this.params.keys()]) if (!this.validated.paramSpecs.has(key)) this.dropParam(key);
  }

  /** @internal */
  finish(): { state: Omit<ModelState, 'journal' | 'optimizerStep'>; validated: ValidatedGraph; created: Set<Tensor> } {
    this.refresh();
    // Parameters and optimizer slots in graph order, as `Model.create` and `load` lay them out
    // (`paramKeys()` promises it): a node inserted by this edit must not end up last, or a save
    // would order the file differently from the same model saved again after loading.
    const keys = [...this.validated.paramSpecs.keys()];
    const params = new Map(keys.map((key) => [key, this.param(key)]));
    const slots = new Map(keys.flatMap((key) => (this.slots.has(key) ? [[key, this.slots.get(key) as Map<string, Tensor>] as const] : [])));
    return { state: { graph: this.graph, params, slots }, validated: this.validated, created: this.created };
  }

  /** @internal Disposes everything this transaction created. */
  abort(): void {
    for (const t of this.created) t.dispose();
    this.created.clear();
  }
}

function tensorsOf(state: Pick<ModelState, 'params' | 'slots'>): Set<Tensor> {
  const out = new Set<Tensor>();
  for (const entry of state.params.values()) {
    out.add(entry.value);
    if (entry.mask) out.add(entry.mask);
  }
  for (const slots of state.slots.values()) for (const t of slots.values()) out.add(t);
  return out;
}

/** A function that is declared `async` (its body runs after the transaction has ended). */
function isAsyncFunction(fn: unknown): boolean {
  const name = (fn as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name === 'AsyncFunction' || name === 'AsyncGeneratorFunction';
}

/**
 * @internal Runs `body` on a draft; commits atomically or restores everything. `derive` computes
 * what the model needs from the new state (plan, counts) before anything old is released, so a
 * failure there also leaves the model exactly as it was.
 */
export function runTransaction<D>(
  model: Model,
  body: (tx: Transaction) => void,
  meta: EditMeta,
  before: ModelCounts,
  derive: (state: Omit<ModelState, 'journal' | 'optimizerStep'>, validated: ValidatedGraph) => D,
): { state: ModelState; validated: ValidatedGraph; derived: D; finishEntry: (after: ModelCounts) => JournalEntry } {
  if (typeof body !== 'function') throw new RsError('INVALID_ARGUMENT', `model.edit takes a callback (tx) => { ... }, got ${body === null ? 'null' : typeof body}.`);
  if (isAsyncFunction(body)) {
    // Refused before it runs: an async callback would keep editing after the commit.
    throw new RsError('INVALID_EDIT', 'The edit callback must be synchronous; it is declared async. Do any awaiting before model.edit, then edit synchronously.');
  }
  const old = model.internalState;
  const tx = new Transaction(model);
  let finished: ReturnType<Transaction['finish']>;
  let derived: D;
  try {
    const result: unknown = body(tx);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      // Whatever the promise does later ends in TRANSACTION_CLOSED: observe it so that it can
      // never surface as an unhandled rejection.
      (result as Promise<unknown>).then(undefined, () => undefined);
      throw new RsError('INVALID_EDIT', 'The edit callback must be synchronous (it returned a promise). Do any awaiting before model.edit, then edit synchronously.');
    }
    finished = tx.finish();
    derived = derive(finished.state, finished.validated);
  } catch (error) {
    tx.closed = true;
    tx.abort();
    throw error;
  }
  tx.closed = true;
  const keep = tensorsOf(finished.state);
  for (const t of tensorsOf(old)) if (!keep.has(t)) t.dispose();
  for (const t of finished.created) if (!keep.has(t)) t.dispose();
  const state: ModelState = { ...finished.state, journal: old.journal, optimizerStep: old.optimizerStep };
  return {
    state,
    validated: finished.validated,
    derived,
    finishEntry: (after) => ({
      seq: old.journal.length + 1,
      time: new Date().toISOString(),
      technique: meta.technique ?? 'manual',
      reason: meta.reason ?? '',
      changes: tx.changes,
      params: { before: before.params, after: after.params },
      nonzeroParams: { before: before.nonzeroParams, after: after.nonzeroParams },
      flops: { before: before.flops, after: after.flops },
      ...(meta.details ? { details: meta.details } : {}),
    }),
  };
}

export { paramKey };
