import { tf, RsError, type Model, type Tensor, type JournalEntry, type Transaction, type GraphDef, type NodeDef } from '@rs/core';
import type { MoeAttrs } from './moe-op';

const EXPERT_PARAMS = ['router', 'routerBias', 'gateOffset', 'noise', 'w1', 'b1', 'w2', 'b2'] as const;
/** The axis of each parameter that indexes experts. */
const EXPERT_AXIS: Record<string, number> = { router: 1, routerBias: 0, gateOffset: 0, noise: 1, w1: 0, b1: 0, w2: 0, b2: 0 };

function moeNode(model: Model, nodeId: string): NodeDef {
  const node = model.graph.nodes.find((n) => n.id === nodeId);
  if (!node) throw new RsError('UNKNOWN_NODE', `No node '${nodeId}' in the model.`, { node: nodeId });
  if (node.op !== 'moe') throw new RsError('INVALID_ARGUMENT', `Node '${nodeId}' is a '${node.op}', not a 'moe' layer.`, { node: nodeId });
  return node;
}

function expertCount(model: Model, nodeId: string): number {
  return model.param(`${nodeId}/w1`).value.shape[0];
}

function checkExpert(model: Model, nodeId: string, expert: unknown, what: string): number {
  const count = expertCount(model, nodeId);
  if (typeof expert !== 'number' || !Number.isInteger(expert) || expert < 0 || expert >= count) {
    throw new RsError('UNIT_INDEX_OUT_OF_RANGE', `${what}: expert ${String(expert)} does not exist in '${nodeId}' (experts 0..${count - 1}).`, {
      node: nodeId,
      expert,
    });
  }
  return expert;
}

/** The keys of the expert-indexed parameters that node `nodeId` has. */
function expertKeys(tx: Transaction | Model, nodeId: string): string[] {
  const keys: string[] = [];
  for (const name of EXPERT_PARAMS) {
    try {
      tx.param(`${nodeId}/${name}`);
      keys.push(name);
    } catch {
      // `noise` exists only for noisy routers.
    }
  }
  return keys;
}

/** One expert's slice of a parameter, keeping the expert axis (size 1). */
function expertSlice(value: Tensor, axis: number, expert: number): Tensor {
  const begin = value.shape.map((_, i) => (i === axis ? expert : 0));
  const size = value.shape.map((s, i) => (i === axis ? 1 : s));
  return tf.slice(value, begin, size);
}

/** `value` with expert `expert`'s slice replaced by `slice`. */
function replaceSlice(value: Tensor, axis: number, expert: number, slice: Tensor): Tensor {
  const count = value.shape[axis];
  const pieces: Tensor[] = [];
  if (expert > 0) pieces.push(tf.slice(value, value.shape.map(() => 0), value.shape.map((s, i) => (i === axis ? expert : s))));
  pieces.push(slice);
  if (expert < count - 1) {
    pieces.push(
      tf.slice(
        value,
        value.shape.map((_, i) => (i === axis ? expert + 1 : 0)),
        value.shape.map((s, i) => (i === axis ? count - expert - 1 : s)),
      ),
    );
  }
  return tf.concat(pieces, axis);
}

/** Options of {@link addExpert}. */
export interface AddExpertOptions {
  /**
   * Copy this expert and split its router entry between the two copies: both keep its router
   * column and bias (so tokens choose them exactly as before; ties go to the original), both
   * gate offsets drop by log 2 (so the gate softmax's denominators and every other expert's
   * gate are unchanged and each copy gets half the original gate), and the output weights of
   * both are doubled. For top-1 routing without dropped tokens the
   * model's outputs are unchanged (tested to 1e-5). The copy takes the source expert's mask
   * slices of every masked (pruned) parameter, so its pruned weights stay pruned. Default: a
   * fresh, initialised expert (all-ones masks where the layer is masked).
   */
  copyOf?: number;
  reason?: string;
}

/**
 * Adds one expert to a `moe` layer through a journaled core edit (optimizer state follows: the
 * new expert's Adam moments start at zero). Returns the journal entry.
 *
 * @example
 * const busiest = busiestExpert(loads);
 * addExpert(model, 'block0.moe', { copyOf: busiest });
 */
export function addExpert(model: Model, nodeId: string, options: AddExpertOptions = {}): JournalEntry {
  moeNode(model, nodeId);
  const group = `${nodeId}:experts`;
  if (options.copyOf === undefined) {
    return model.edit((tx) => tx.insertUnits(group, 1), { technique: 'moe', reason: options.reason ?? 'add a fresh expert', details: { node: nodeId } });
  }
  const source = checkExpert(model, nodeId, options.copyOf, 'addExpert');
  return model.edit(
    (tx) => {
      const created: Tensor[] = [];
      try {
        const values: Record<string, Tensor> = {};
        const masks: Record<string, Tensor> = {};
        for (const name of expertKeys(tx, nodeId)) {
          const key = `${nodeId}/${name}`;
          const axis = EXPERT_AXIS[name];
          const mask = tx.param(key).mask;
          if (mask) {
            masks[key] = expertSlice(mask, axis, source);
            created.push(masks[key]);
          }
          let slice = expertSlice(tx.param(key).value, axis, source);
          created.push(slice);
          if (name === 'gateOffset') slice = tf.sub(slice, Math.log(2));
          else if (name === 'w2' || name === 'b2') slice = tf.mul(slice, 2);
          created.push(slice);
          values[key] = slice;
        }
        for (const name of ['gateOffset', 'w2', 'b2']) {
          const key = `${nodeId}/${name}`;
          const next = tf.tidy(() => replaceSlice(tx.param(key).value, EXPERT_AXIS[name], source, values[key]));
          created.push(next);
          tx.setParam(key, next);
        }
        tx.insertUnits(group, 1, { at: source + 1, values, masks });
      } finally {
        for (const t of created) t.dispose();
      }
    },
    { technique: 'moe', reason: options.reason ?? `split expert ${source} (router entry shared, output preserved)`, details: { node: nodeId, copyOf: source } },
  );
}

/**
 * Removes one expert (e.g. an under-used one) through a journaled core edit. Removing the last
 * expert, or leaving fewer experts than `k`, is refused with a typed error and the model is
 * unchanged.
 *
 * @example
 * removeExpert(model, 'moe', leastUsedExpert(loads));
 */
export function removeExpert(model: Model, nodeId: string, expert: number, reason = 'remove an under-used expert'): JournalEntry {
  moeNode(model, nodeId);
  const index = checkExpert(model, nodeId, expert, 'removeExpert');
  if (expertCount(model, nodeId) === 1) {
    throw new RsError('REMOVE_ALL_UNITS', `removeExpert: '${nodeId}' has a single expert; a MoE layer needs at least one (remove or replace the node instead).`, {
      node: nodeId,
    });
  }
  return model.edit((tx) => tx.removeUnits(`${nodeId}:experts`, [index]), { technique: 'moe', reason, details: { node: nodeId, expert: index } });
}

/**
 * Merges expert `drop` into expert `keep`: `keep`'s parameters become the average of both
 * (weighted by `weights`, e.g. their loads; default equal), then `drop` is removed. One
 * journaled edit; the model stays valid and trainable. A masked (pruned) parameter's merged
 * slice is masked by the union of both experts' masks: a weight live in either expert is
 * live in the average, one pruned in both stays pruned.
 *
 * @example
 * mergeExperts(model, 'moe', 2, 5, { weights: [loads[2], loads[5]] });
 */
export function mergeExperts(model: Model, nodeId: string, keep: number, drop: number, options: { weights?: [number, number]; reason?: string } = {}): JournalEntry {
  moeNode(model, nodeId);
  const a = checkExpert(model, nodeId, keep, 'mergeExperts');
  const b = checkExpert(model, nodeId, drop, 'mergeExperts');
  if (a === b) throw new RsError('INVALID_ARGUMENT', `mergeExperts: cannot merge expert ${a} with itself.`, { node: nodeId });
  const [wa, wb] = options.weights ?? [1, 1];
  if (!(wa >= 0 && wb >= 0 && wa + wb > 0) || !Number.isFinite(wa + wb)) {
    throw new RsError('INVALID_ARGUMENT', `mergeExperts: weights must be finite, >= 0 and not both 0, got [${String(wa)}, ${String(wb)}].`);
  }
  const ta = wa / (wa + wb);
  return model.edit(
    (tx) => {
      for (const name of expertKeys(tx, nodeId)) {
        const key = `${nodeId}/${name}`;
        const axis = EXPERT_AXIS[name];
        const mask = tx.param(key).mask;
        if (mask) {
          const union = tf.tidy(() => replaceSlice(mask, axis, a, tf.maximum(expertSlice(mask, axis, a), expertSlice(mask, axis, b))));
          tx.setMask(key, union);
          union.dispose();
        }
        const next = tf.tidy(() => {
          const value = tx.param(key).value;
          const sa = expertSlice(value, axis, a);
          const sb = expertSlice(value, axis, b);
          // Gate offsets are log-multiplicities: the merged expert carries both masses.
          const merged = name === 'gateOffset' ? tf.log(tf.add(tf.exp(sa), tf.exp(sb))) : tf.add(tf.mul(sa, ta), tf.mul(sb, 1 - ta));
          return replaceSlice(value, axis, a, merged);
        });
        tx.setParam(key, next);
        next.dispose();
      }
      tx.removeUnits(`${nodeId}:experts`, [b]);
    },
    { technique: 'moe', reason: options.reason ?? `merge expert ${b} into ${a}`, details: { node: nodeId, keep: a, drop: b, weights: [wa, wb] } },
  );
}

/** Index of the largest load (ties: lowest index). */
export function busiestExpert(loads: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < loads.length; i++) if (loads[i] > loads[best]) best = i;
  return best;
}

/** Index of the smallest load (ties: lowest index). */
export function leastUsedExpert(loads: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < loads.length; i++) if (loads[i] < loads[best]) best = i;
  return best;
}

/** A dense FFN found in a graph: `dense -> relu|gelu -> dense`. */
export interface FfnChain {
  /** First dense layer, activation node, second dense layer. */
  ffn1: string;
  activation: string;
  ffn2: string;
  kind: 'relu' | 'gelu';
}

/**
 * Finds the FFN chains `dense -> relu|gelu -> dense` whose intermediate nodes have a single
 * consumer. In `charTransformer` graphs these are `block{i}.ffn1 -> block{i}.gelu -> block{i}.ffn2`.
 *
 * @example
 * findFfns(charTransformer({ vocabSize: 80 })); // [{ ffn1: 'block0.ffn1', ... }, ...]
 */
export function findFfns(graph: GraphDef): FfnChain[] {
  const consumers = new Map<string, NodeDef[]>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const found: FfnChain[] = [];
  const used = new Set<string>();
  for (const first of graph.nodes) {
    if (first.op !== 'dense' || used.has(first.id)) continue;
    const act = consumers.get(first.id);
    if (act?.length !== 1 || (act[0].op !== 'relu' && act[0].op !== 'gelu') || graph.outputs.includes(first.id)) continue;
    const second = consumers.get(act[0].id);
    if (second?.length !== 1 || second[0].op !== 'dense' || graph.outputs.includes(act[0].id)) continue;
    found.push({ ffn1: first.id, activation: act[0].id, ffn2: second[0].id, kind: act[0].op });
    for (const id of [first.id, act[0].id, second[0].id]) used.add(id);
  }
  return found;
}

function chainOf(graph: GraphDef, ffn1: string): FfnChain {
  const chain = findFfns(graph).find((c) => c.ffn1 === ffn1);
  if (!chain) throw new RsError('INVALID_ARGUMENT', `'${ffn1}' does not start a dense -> relu|gelu -> dense FFN (found: ${findFfns(graph).map((c) => c.ffn1).join(', ') || 'none'}).`);
  return chain;
}

/** Id of the moe node that replaces the FFN starting at `ffn1` (`block0.ffn1` -> `block0.moe`). */
export function moeIdFor(ffn1: string): string {
  return ffn1.endsWith('ffn1') ? `${ffn1.slice(0, -4)}moe` : `${ffn1}.moe`;
}

/**
 * Returns a copy of `graph` in which the FFNs starting at `ffns` (default: every FFN chain)
 * are replaced by `moe` layers with `attrs` (`hidden` defaults to the dense hidden width, the
 * activation to the FFN's). Node ids: `block0.ffn1` becomes `block0.moe`.
 *
 * @example
 * const graph = moeGraph(charTransformer({ vocabSize: 80, dim: 32 }), { experts: 8 });
 */
export function moeGraph(graph: GraphDef, attrs: Omit<MoeAttrs, 'hidden'> & { hidden?: number }, ffns?: string[]): GraphDef {
  const copy = JSON.parse(JSON.stringify(graph)) as GraphDef;
  const chains = ffns ? ffns.map((id) => chainOf(copy, id)) : findFfns(copy);
  for (const chain of chains) {
    const first = copy.nodes.find((n) => n.id === chain.ffn1) as NodeDef;
    const second = copy.nodes.find((n) => n.id === chain.ffn2) as NodeDef;
    const id = moeIdFor(chain.ffn1);
    const node: NodeDef = {
      id,
      op: 'moe',
      inputs: [...first.inputs],
      attrs: { activation: chain.kind, ...attrs, hidden: attrs.hidden ?? first.attrs.units, units: second.attrs.units } as Record<string, unknown>,
    };
    const at = copy.nodes.indexOf(first);
    copy.nodes = copy.nodes.filter((n) => n.id !== chain.ffn1 && n.id !== chain.activation && n.id !== chain.ffn2);
    copy.nodes.splice(at, 0, node);
    for (const n of copy.nodes) n.inputs = n.inputs.map((i) => (i === chain.ffn2 ? id : i));
    copy.outputs = copy.outputs.map((o) => (o === chain.ffn2 ? id : o));
  }
  return copy;
}

/** Options of {@link upcycle}. */
export interface UpcycleOptions extends Omit<MoeAttrs, 'hidden' | 'units' | 'activation'> {
  /** First dense layers of the FFNs to convert; default: every FFN chain. */
  ffns?: string[];
  /** Router start: `'random'` (default, normal with std `routerStd`) or `'zeros'` (uniform routing). */
  routerInit?: 'random' | 'zeros';
  /** Default 0.01. */
  routerStd?: number;
  /** Seed of the random router. Default 0. */
  seed?: number;
}

/**
 * Sparse upcycling (Komatsuzaki et al. 2022): replaces trained dense FFNs by `moe` layers whose
 * experts all start as copies of the dense FFN, in one journaled edit. With top2 / topk the
 * gates sum to 1 per token, so the function is unchanged whatever the router (while no token
 * is dropped). With switch / expert choice the copies' output weights are scaled by the number
 * of experts E so that with a uniform router (probability 1/E) a token's output equals the
 * dense FFN's: exact with `routerInit: 'zeros'` and no dropped tokens, close with the default
 * small random router. Pruned FFNs stay pruned: each expert's `w1`, `b1`, `w2`, `b2` take the
 * masks of the FFN's kernels and biases (where those have masks).
 *
 * @example
 * upcycle(denseModel, { experts: 8, routing: 'switch', capacityFactor: 1.25 });
 */
export function upcycle(model: Model, options: UpcycleOptions): JournalEntry {
  const { ffns, routerInit = 'random', routerStd = 0.01, seed = 0, ...attrs } = options;
  if (routerInit !== 'random' && routerInit !== 'zeros') throw new RsError('INVALID_ARGUMENT', `upcycle: routerInit must be 'random' or 'zeros', got '${String(routerInit)}'.`);
  if (typeof routerStd !== 'number' || !Number.isFinite(routerStd) || routerStd < 0) throw new RsError('INVALID_ARGUMENT', `upcycle: routerStd must be a finite number >= 0, got ${String(routerStd)}.`);
  const graph = model.graph;
  const chains = ffns ? ffns.map((id) => chainOf(graph, id)) : findFfns(graph);
  if (chains.length === 0) throw new RsError('INVALID_ARGUMENT', 'upcycle: the model has no dense -> relu|gelu -> dense FFN to convert.');
  const experts = attrs.experts;
  if (!Number.isInteger(experts) || experts < 1) throw new RsError('INVALID_ARGUMENT', `upcycle: experts must be a positive integer, got ${String(experts)}.`);
  return model.edit(
    (tx) => {
      chains.forEach((chain, c) => {
        const first = graph.nodes.find((n) => n.id === chain.ffn1) as NodeDef;
        const second = graph.nodes.find((n) => n.id === chain.ffn2) as NodeDef;
        const k1 = tx.param(`${chain.ffn1}/kernel`).value;
        const k2 = tx.param(`${chain.ffn2}/kernel`).value;
        const [d, h] = k1.shape as [number, number];
        const out = k2.shape[1] as number;
        const params = tf.tidy(() => {
          const bias1 = first.attrs.useBias === false ? tf.zeros([h]) : tx.param(`${chain.ffn1}/bias`).value;
          const bias2 = second.attrs.useBias === false ? tf.zeros([out]) : tx.param(`${chain.ffn2}/bias`).value;
          // Gates renormalised over the k choices (top2, topk) already sum to 1 per token.
          const scale = attrs.routing === 'top2' || attrs.routing === 'topk' ? 1 : experts;
          const tile = (t: Tensor, scale = 1): Tensor => tf.mul(tf.tile(tf.expandDims(t, 0), [experts, ...t.shape.map(() => 1)]), scale);
          const p: Record<string, Tensor> = {
            w1: tile(k1),
            b1: tile(bias1),
            w2: tile(k2, scale),
            b2: tile(bias2, scale),
            routerBias: tf.zeros([experts]),
            gateOffset: tf.zeros([experts]),
            router: routerInit === 'zeros' ? tf.zeros([d, experts]) : tf.randomNormal([d, experts], 0, routerStd, 'float32', seed + c),
          };
          if ((attrs.noisy ?? attrs.routing === 'topk') === true) p.noise = tf.zeros([d, experts]);
          for (const t of Object.values(p)) tf.keep(t);
          return p;
        });
        // Every expert copies the FFN, so every expert takes its masks (pruned stays pruned).
        const masks: Record<string, Tensor> = {};
        const sources: [string, string, boolean][] = [
          ['w1', `${chain.ffn1}/kernel`, true],
          ['b1', `${chain.ffn1}/bias`, first.attrs.useBias !== false],
          ['w2', `${chain.ffn2}/kernel`, true],
          ['b2', `${chain.ffn2}/bias`, second.attrs.useBias !== false],
        ];
        for (const [name, key, present] of sources) {
          const mask = present ? tx.param(key).mask : undefined;
          if (mask) masks[name] = tf.tidy(() => tf.tile(tf.expandDims(mask, 0), [experts, ...mask.shape.map(() => 1)]));
        }
        try {
          const id = moeIdFor(chain.ffn1);
          tx.insertNode(
            { id, op: 'moe', inputs: [...first.inputs], attrs: { ...attrs, activation: chain.kind, hidden: h, units: out } as Record<string, unknown> },
            { after: chain.ffn2, params, masks },
          );
          tx.removeNode(chain.ffn2);
          tx.removeNode(chain.activation);
          tx.removeNode(chain.ffn1);
        } finally {
          for (const t of [...Object.values(params), ...Object.values(masks)]) t.dispose();
        }
      });
    },
    { technique: 'moe', reason: `sparse upcycling: ${chains.length} FFN(s) -> ${experts} experts each`, details: { ffns: chains.map((c) => c.ffn1), experts } },
  );
}
