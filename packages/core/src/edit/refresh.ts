// Keeping a draft consistent: node records and rewiring for the journal, and the refresh that
// re-validates the graph and reconciles parameters with it after every primitive.
import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import { paramKey, splitParamKey } from '../ir/types';
import { validateGraph, type ValidatedGraph } from '../ir/validate';
import type { UnitGroup } from '../units/analyze';
import { initialize } from '../rng';
import type { ModelState } from '../model';
import type { NodeRecord, StructureBefore } from './journal';
import { dropParam, paramEntry, track, type Draft } from './draft';
import { applyMask } from '../ir/mask';

/** A float32 copy of `mask` after checking its shape and that it holds only 0 and 1. */
export function binaryMask(what: string, key: string, mask: Tensor, shape: readonly number[]): Tensor {
  if (mask.shape.join(',') !== shape.join(',')) {
    throw new RsError('SHAPE_MISMATCH', `${what}: mask for '${key}' must have shape ${formatShape(shape)}, got ${formatShape(mask.shape)}.`, { param: key });
  }
  const bad = tf.tidy(() => tf.sum(tf.cast(tf.logicalAnd(tf.notEqual(mask, 0), tf.notEqual(mask, 1)), 'float32')).dataSync()[0]);
  if (bad > 0) throw new RsError('INVALID_ARGUMENT', `${what}: mask for '${key}' must hold only 0 and 1; ${bad} entr${bad === 1 ? 'y is' : 'ies are'} neither.`, { param: key });
  return tf.cast(mask, 'float32');
}

/** The journal's record of the node at `index` of the graph as edited so far. */
export function nodeRecord(d: Draft, index: number): NodeRecord {
  const node = d.graph.nodes[index];
  const record: NodeRecord = { id: node.id, op: node.op, inputs: [...node.inputs], shape: [...(d.validated.infos.get(node.id)?.shape ?? [])] };
  if (index > 0) record.previous = d.graph.nodes[index - 1].id;
  return record;
}

/** Makes every reader of `from` (nodes and graph outputs) read `to`; returns what it found. */
export function rewire(d: Draft, from: string, to: string): StructureBefore {
  const before: StructureBefore = {};
  const rewired = d.graph.nodes.filter((n) => n.inputs.includes(from));
  if (rewired.length > 0) before.rewired = rewired.map((n) => ({ id: n.id, inputs: [...n.inputs] }));
  for (const n of rewired) n.inputs = n.inputs.map((i) => (i === from ? to : i));
  if (d.graph.outputs.includes(from)) {
    before.outputs = [...d.graph.outputs];
    d.graph.outputs = d.graph.outputs.map((o) => (o === from ? to : o));
  }
  return before;
}

/** Re-derives the attrs of the nodes holding `resized`'s parameters from their shapes. */
function syncAttrs(d: Draft, resized: UnitGroup): void {
  const nodes = new Set(resized.params.map((m) => splitParamKey(m.param)[0]));
  for (const node of d.graph.nodes) {
    if (!nodes.has(node.id)) continue;
    const schema = d.model.registry.get(node.op);
    if (!schema.syncAttrs) continue;
    const shapes: Record<string, number[]> = {};
    for (const [key, entry] of d.params) {
      const [owner, name] = splitParamKey(key);
      if (owner === node.id) shapes[name] = entry.value.shape;
    }
    const inputs = node.inputs.map((i) => d.validated.infos.get(i)).filter((x) => x !== undefined);
    node.attrs = schema.syncAttrs(node.attrs, shapes, inputs) as Record<string, unknown>;
  }
}

/** Gives new specs initialised (or `given`) values and checks the shapes of kept parameters. */
function reconcileParams(d: Draft, newNode?: string, given?: Record<string, Tensor>): void {
  const givenNames = new Set(Object.keys(given ?? {}));
  for (const [key, spec] of d.validated.paramSpecs) {
    const [node, name] = splitParamKey(key);
    const provided = node === newNode ? given?.[name] : undefined;
    if (provided) {
      givenNames.delete(name);
      if (provided.shape.join(',') !== spec.shape.join(',')) {
        throw new RsError('SHAPE_MISMATCH', `Parameter '${key}' needs shape ${formatShape(spec.shape)}, got ${formatShape(provided.shape)}.`, { param: key });
      }
      dropParam(d, key);
      d.params.set(key, { value: track(d, tf.clone(provided)), trainable: spec.trainable ?? spec.role !== 'state', role: spec.role ?? 'weight' });
      continue;
    }
    const entry = d.params.get(key);
    if (!entry) {
      d.params.set(key, {
        value: track(d, initialize(spec.init, spec.shape, d.rng)),
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
}

/** Sets the masks given for `newNode`'s parameters (by name) and applies them. */
function applyNodeMasks(d: Draft, newNode?: string, masks?: Record<string, Tensor>): void {
  for (const [name, provided] of Object.entries(masks ?? {})) {
    const key = paramKey(newNode as string, name);
    const spec = d.validated.paramSpecs.get(key);
    if (!spec) throw new RsError('UNKNOWN_PARAM', `Node '${newNode}' has no parameter '${name}' to mask.`, { node: newNode, param: name });
    const entry = paramEntry(d, key);
    const mask = track(d, binaryMask(`Node '${newNode}'`, key, provided, spec.shape));
    d.params.set(key, { ...entry, value: track(d, applyMask(entry.value, mask)), mask });
  }
}

/**
 * Re-derives attrs from parameter shapes, validates the graph, and reconciles parameters
 * with the validated specs (new nodes get initialised parameters; removed nodes lose theirs).
 * `masks` (by parameter name of `newNode`) become those parameters' masks.
 */
export function refresh(d: Draft, resized?: UnitGroup, newNode?: string, given?: Record<string, Tensor>, masks?: Record<string, Tensor>): void {
  if (resized) syncAttrs(d, resized);
  d.validated = validateGraph(d.graph, d.model.registry);
  d.analysis = undefined;
  reconcileParams(d, newNode, given);
  applyNodeMasks(d, newNode, masks);
  for (const key of [...d.params.keys()]) if (!d.validated.paramSpecs.has(key)) dropParam(d, key);
}

/** Refreshes the draft and returns its final state, parameters and slots in graph order. */
export function finishDraft(d: Draft): { state: Omit<ModelState, 'journal' | 'optimizerSteps'>; validated: ValidatedGraph; created: Set<Tensor> } {
  refresh(d);
  // Parameters and optimizer slots in graph order, as `Model.create` and `load` lay them out
  // (`paramKeys()` promises it): a node inserted by this edit must not end up last, or a save
  // would order the file differently from the same model saved again after loading.
  const keys = [...d.validated.paramSpecs.keys()];
  const params = new Map(keys.map((key) => [key, paramEntry(d, key)]));
  const slots = new Map(keys.flatMap((key) => (d.slots.has(key) ? [[key, d.slots.get(key) as Map<string, Tensor>] as const] : [])));
  return { state: { graph: d.graph, params, slots }, validated: d.validated, created: d.created };
}
