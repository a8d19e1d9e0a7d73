// The public edit API: each primitive checks that the transaction is open and delegates to the
// module of its concern (unit-edits, node-edits, param-edits), which edits the draft state.
import type { Tensor } from '../tf';
import { RsError } from '../errors';
import type { NodeDef } from '../ir/types';
import type { ValidatedGraph } from '../ir/validate';
import type { UnitGroup } from '../units/analyze';
import type { Model, ModelState, ParamEntry } from '../model';
import type { EditChange } from './journal';
import { abortDraft, createDraft, findGroup, paramEntry, unitGroups, type Draft } from './draft';
import { insertNode, removeNode, replaceNode, setOutputs, type InsertNodeOptions } from './node-edits';
import { paramSlots, setMask, setMeta, setParam, setSlot, setTrainable } from './param-edits';
import { finishDraft } from './refresh';
import { insertUnits, permuteUnits, removeUnits, type InsertUnitsOptions } from './unit-edits';

/**
 * The edit API passed to `model.edit(tx => ...)`. Each primitive is checked at once; the whole
 * graph is validated again before commit.
 */
export class Transaction {
  private readonly draft: Draft;
  readonly changes: EditChange[];
  closed = false;

  constructor(model: Model) {
    this.draft = createDraft(model);
    this.changes = this.draft.changes;
  }

  /** Runs one primitive on the draft, refused once the transaction has ended. */
  private apply(edit: (draft: Draft) => void): this {
    if (this.closed) throw new RsError('TRANSACTION_CLOSED', 'This transaction has ended; make edits inside the model.edit callback.');
    edit(this.draft);
    return this;
  }

  /** Unit groups of the graph as edited so far. */
  groups(): UnitGroup[] {
    return unitGroups(this.draft);
  }

  /** A group by id (`fc1`, `attn:heads`) in the graph as edited so far. */
  group(id: string): UnitGroup {
    return findGroup(this.draft, id);
  }

  /** The current value of a parameter in this transaction. */
  param(key: string): ParamEntry {
    return paramEntry(this.draft, key);
  }

  /**
   * Removes units (neurons, channels, heads) from a group: every coupled parameter shrinks.
   *
   * @example
   * tx.removeUnits('fc1', [3, 7]);
   */
  removeUnits(groupId: string, indices: number[]): this {
    return this.apply((d) => removeUnits(d, groupId, indices));
  }

  /**
   * Reorders a group's units: new unit `i` is old unit `order[i]`. Preserves the function.
   *
   * @example
   * tx.permuteUnits('fc1', [2, 0, 1, ...]);
   */
  permuteUnits(groupId: string, order: number[]): this {
    return this.apply((d) => permuteUnits(d, groupId, order));
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
    return this.apply((d) => insertUnits(d, groupId, count, options));
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
    return this.apply((d) => insertNode(d, node, options));
  }

  /**
   * Removes a node; its consumers read `bypass` instead (default: the node's first input).
   *
   * @example
   * tx.removeNode('block2', { bypass: 'block1' });
   */
  removeNode(id: string, options: { bypass?: string } = {}): this {
    return this.apply((d) => removeNode(d, id, options));
  }

  /**
   * Replaces a node's op/attrs/inputs (same id unless `node.id` differs). Parameters of the
   * old node that the new one declares with the same shape are kept (with their masks), others
   * re-initialised. `options.params` gives values by parameter name; `options.masks` element
   * masks (1 keep, 0 pruned; same shape as the parameter, only 0 and 1) by name, which replace
   * any kept mask and are applied to the value.
   */
  replaceNode(id: string, node: Omit<NodeDef, 'id'> & { id?: string }, options: { params?: Record<string, Tensor>; masks?: Record<string, Tensor> } = {}): this {
    return this.apply((d) => replaceNode(d, id, node, options));
  }

  /**
   * Sets the graph's outputs (node or input ids, in order), e.g. to add a head per task.
   * `model.apply` returns the first; `model.run` returns all.
   *
   * @example
   * tx.setOutputs([...model.graph.outputs, 'task1/head']);
   */
  setOutputs(ids: string[]): this {
    return this.apply((d) => setOutputs(d, ids));
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
    return this.apply((d) => setMeta(d, key, value));
  }

  /** Freezes or unfreezes a parameter (`fc1/kernel`) or all parameters of a node (`fc1`). */
  setTrainable(target: string, trainable: boolean): this {
    return this.apply((d) => setTrainable(d, target, trainable));
  }

  /**
   * Sets an element mask (1 keep, 0 pruned) on a parameter, or clears it with `null`. Masked
   * weights are zeroed now and kept at zero by training.
   */
  setMask(key: string, mask: Tensor | null): this {
    return this.apply((d) => setMask(d, key, mask));
  }

  /** Replaces a parameter's value (same shape). */
  setParam(key: string, value: Tensor): this {
    return this.apply((d) => setParam(d, key, value));
  }

  /**
   * The optimizer slots (e.g. Adam's `m` and `v`) of a parameter inside the transaction, by
   * name; empty when the optimizer has not stepped it yet. Slots follow unit edits (removed
   * units' entries go, inserted units' start at 0): read them after such an edit to see that.
   */
  paramSlots(key: string): ReadonlyMap<string, Tensor> {
    return paramSlots(this.draft, key);
  }

  /**
   * Replaces an existing optimizer slot of a parameter (same shape), e.g. to give units copied
   * by a growth step the optimizer state of the units they copy. Rolled back with the edit.
   *
   * @example
   * tx.setSlot('fc1/kernel', 'v', copiedSecondMoments);
   */
  setSlot(key: string, name: string, value: Tensor): this {
    return this.apply((d) => setSlot(d, key, name, value));
  }

  /** @internal */
  finish(): { state: Omit<ModelState, 'journal' | 'optimizerSteps'>; validated: ValidatedGraph; created: Set<Tensor> } {
    return finishDraft(this.draft);
  }

  /** @internal Disposes everything this transaction created. */
  abort(): void {
    abortDraft(this.draft);
  }
}
