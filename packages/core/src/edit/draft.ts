// The draft state of a transaction (copies of the model's graph, parameters and optimizer slots)
// and the accessors every edit primitive uses.
import { tf, type Tensor } from '../tf';
import { RsError } from '../errors';
import type { GraphDef } from '../ir/types';
import type { ValidatedGraph } from '../ir/validate';
import { analyzeUnits, type UnitAnalysis, type UnitGroup } from '../units/analyze';
import { createRng, type SeededRng } from '../rng';
import type { Model, ParamEntry } from '../model';
import type { EditChange } from './journal';

/** What a transaction edits: copies of the model's state, plus the tensors it created and the changes it made. */
export interface Draft {
  graph: GraphDef;
  readonly params: Map<string, ParamEntry>;
  readonly slots: Map<string, Map<string, Tensor>>;
  readonly created: Set<Tensor>;
  readonly changes: EditChange[];
  validated: ValidatedGraph;
  analysis?: UnitAnalysis;
  readonly model: Model;
  readonly rng: SeededRng;
}

export function createDraft(model: Model): Draft {
  const state = model.internalState;
  return {
    graph: JSON.parse(JSON.stringify(state.graph)) as GraphDef,
    params: new Map([...state.params].map(([k, e]) => [k, { ...e }])),
    slots: new Map([...state.slots].map(([k, s]) => [k, new Map(s)])),
    created: new Set<Tensor>(),
    changes: [],
    validated: model.validated,
    model,
    rng: createRng(model.rng.seed()),
  };
}

/** Keeps `t` past any tidy and records it as created by the draft (disposed on abort). */
export function track<T extends Tensor>(d: Draft, t: T): T {
  tf.keep(t);
  d.created.add(t);
  return t;
}

/** Unit groups of the draft's graph (cached until the next refresh). */
export function unitGroups(d: Draft): UnitGroup[] {
  d.analysis ??= analyzeUnits(d.graph, d.model.registry, d.validated.infos);
  return d.analysis.groups;
}

/** A group of the draft's graph by id. */
export function findGroup(d: Draft, id: string): UnitGroup {
  unitGroups(d);
  const group = d.analysis?.byId.get(id);
  if (!group) {
    throw new RsError('UNKNOWN_GROUP', `No unit group '${id}'. Editable groups: ${unitGroups(d).filter((g) => !g.frozen).map((g) => g.id).join(', ') || 'none'}.`, { group: id });
  }
  return group;
}

/** A parameter of the draft by key. */
export function paramEntry(d: Draft, key: string): ParamEntry {
  const entry = d.params.get(key);
  if (!entry) throw new RsError('UNKNOWN_PARAM', `No parameter '${key}'.`, { param: key });
  return entry;
}

/** The group `groupId`, refused when frozen. */
export function editable(d: Draft, groupId: string): UnitGroup {
  const group = findGroup(d, groupId);
  if (group.frozen) {
    throw new RsError('FROZEN_GROUP', `Group '${group.id}' cannot be edited: ${group.frozen.join('; ')}.`, { group: group.id, reasons: group.frozen });
  }
  return group;
}

/** Removes a parameter and its optimizer slots from the draft. */
export function dropParam(d: Draft, key: string): void {
  d.params.delete(key);
  d.slots.delete(key);
}

/** Disposes everything the draft created. */
export function abortDraft(d: Draft): void {
  for (const t of d.created) t.dispose();
  d.created.clear();
}
