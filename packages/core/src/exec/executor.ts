import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import type { GraphDef, NodeDef, TensorInfo } from '../ir/types';
import { paramKey } from '../ir/types';
import type { ValidatedGraph } from '../ir/validate';
import { ancestors } from '../ir/ancestors';
import type { OpRegistry } from '../ops/registry';
import type { ForwardContext, OpSchema, Rng } from '../ops/schema';
import { dense as denseOp } from '../ops/dense';
import { relu as reluOp } from '../ops/relu';
import { recordingGradients } from '../train/tape';

/** One node ready to run. */
export interface PlanStep {
  node: NodeDef;
  schema: OpSchema<any>;
  /** Parameter names this node owns (keys are `nodeId/name`). */
  paramNames: string[];
  output: TensorInfo;
}

/** A graph compiled into an ordered list of steps. Recompiled after every edit. */
export interface Plan {
  graph: GraphDef;
  steps: PlanStep[];
  inputs: GraphDef['inputs'];
  outputs: string[];
  /**
   * `relu node -> dense node` where the relu is the dense node's only consumer and the dense
   * node is not an output: in inference the executor runs such a pair as one product with the
   * activation fused (one kernel and one pass over the output fewer per layer), unless the run
   * needs the dense node's own value (see `execute`).
   */
  fusable?: ReadonlyMap<string, string>;
}

export function compile(graph: GraphDef, validated: ValidatedGraph, registry: OpRegistry): Plan {
  const names = new Map<string, string[]>();
  for (const spec of validated.paramSpecs.values()) names.set(spec.node, [...(names.get(spec.node) ?? []), spec.name]);
  const steps = validated.order.map((node) => ({
    node,
    schema: registry.get(node.op),
    paramNames: names.get(node.id) ?? [],
    output: validated.infos.get(node.id) as TensorInfo,
  }));
  return { graph, inputs: graph.inputs, outputs: graph.outputs, steps, fusable: fusablePairs(graph, steps) };
}

/** The library's own dense and relu ops only (a registry may replace either). */
function fusablePairs(graph: GraphDef, steps: PlanStep[]): Map<string, string> {
  const consumers = new Map<string, number>();
  for (const step of steps) for (const input of step.node.inputs) consumers.set(input, (consumers.get(input) ?? 0) + 1);
  const byId = new Map(steps.map((s) => [s.node.id, s]));
  const pairs = new Map<string, string>();
  for (const step of steps) {
    if (step.schema !== reluOp || step.node.inputs.length !== 1) continue;
    const producer = byId.get(step.node.inputs[0]);
    if (!producer || producer.schema !== denseOp || consumers.get(producer.node.id) !== 1 || graph.outputs.includes(producer.node.id)) continue;
    pairs.set(step.node.id, producer.node.id);
  }
  return pairs;
}

const NO_FUSION: ReadonlyMap<string, string> = new Map();

/**
 * The fusable pairs this run may fuse: none while training, recording gradients, intercepting
 * nodes or sharing a value cache; none whose dense node is tapped, targeted or aliased (its own
 * value is then needed), nor whose relu is aliased or gradient-tapped.
 */
function activeFusions(plan: Plan, options: RunOptions, targets: readonly string[], alias: ReadonlyMap<string, string>, taps: { activations: Set<string>; gradients: Set<string> }): ReadonlyMap<string, string> {
  if (!plan.fusable || plan.fusable.size === 0 || options.training || options.intercept || options.values !== undefined || recordingGradients()) return NO_FUSION;
  // The common inference call (no targets, aliases or taps) fuses every pair.
  if (options.targets === undefined && alias.size === 0 && taps.activations.size === 0 && taps.gradients.size === 0) return plan.fusable;
  const aliased = new Set([...alias.keys(), ...alias.values()]);
  const active = new Map<string, string>();
  for (const [reluId, denseId] of plan.fusable) {
    if (taps.activations.has(denseId) || taps.gradients.has(denseId) || taps.gradients.has(reluId)) continue;
    if (targets.includes(denseId) || aliased.has(denseId) || aliased.has(reluId)) continue;
    active.set(reluId, denseId);
  }
  return active;
}

/** Taps: record activations (forward values) and gradients (dLoss/dActivation) of named nodes. */
export interface Taps {
  activations?: string[];
  gradients?: string[];
}

export interface RunOptions {
  training: boolean;
  rng: Rng;
  /** Nodes to compute (default: the plan's outputs). Only what they depend on runs. */
  targets?: string[];
  /**
   * `node -> other`: the node takes `other`'s value and is not computed, nor is anything only it
   * needs (skipping a residual block: LayerDrop, adaptive depth).
   */
  alias?: ReadonlyMap<string, string>;
  /**
   * Replaces the computation of a node (conditional computation): called with the node's step,
   * its inputs and `run` (the node's own forward); return a tensor, or undefined to run it as is.
   */
  intercept?: (step: PlanStep, inputs: Tensor[], run: (inputs: Tensor[]) => Tensor) => Tensor | undefined;
  /** Values already known (inputs, computed nodes), shared between runs; filled as nodes run. */
  values?: Map<string, Tensor>;
  /** Taps: record activations (forward values) and gradients (dLoss/dActivation) of named nodes. */
  taps?: Taps;
  /** Where tapped values go; values are kept (outside tidy) and owned by the caller. */
  tapSink?: { activations: Map<string, Tensor>; gradients: Map<string, Tensor> };
}

export interface RunResult {
  /** Values of the targets (default: the plan's outputs), in order. */
  outputs: Tensor[];
  /** Auxiliary losses that ops added (`node/name`), always collected. */
  losses: Map<string, Tensor>;
  metrics: Map<string, Tensor>;
  /** New values of `state` params (batchNorm statistics), already kept. */
  state: Map<string, Tensor>;
}

function checkFeed(id: string, expected: TensorInfo, value: Tensor): void {
  if (!(value instanceof tf.Tensor)) {
    throw new RsError('INVALID_ARGUMENT', `Input '${id}' must be a tensor, got ${value === null ? 'null' : typeof value}.`, { input: id });
  }
  const shapeOk =
    value.shape.length === expected.shape.length && expected.shape.every((d, i) => d === null || d === value.shape[i]);
  if (!shapeOk) {
    throw new RsError('SHAPE_MISMATCH', `Input '${id}' expects shape ${formatShape(expected.shape)}, got ${formatShape(value.shape)}.`, {
      input: id,
    });
  }
  if (value.dtype !== expected.dtype) {
    throw new RsError('SHAPE_MISMATCH', `Input '${id}' expects dtype ${expected.dtype}, got ${value.dtype}.`, { input: id });
  }
}

/**
 * The executor: runs `plan` on `feeds` with `params` (already masked: see
 * `Model.forwardParams`). Only the nodes that `targets` need run, in the plan's order; aliased
 * nodes take their alias's value; `intercept` may replace a node's computation. Auxiliary
 * losses, metrics and new state values are always collected. Call inside tf.tidy or a gradient
 * function: intermediate tensors are left to the caller's scope. Every forward pass of the
 * library (inference, training, early exit, LayerDrop, slimmable and conditional execution,
 * progressive columns) goes through here.
 */
export function execute(plan: Plan, feeds: Tensor[], params: Map<string, Tensor>, options: RunOptions): RunResult {
  if (!Array.isArray(feeds) || feeds.length !== plan.inputs.length) {
    throw new RsError('INVALID_ARGUMENT', `The model takes ${plan.inputs.length} input(s) (${plan.inputs.map((i) => i.id).join(', ')}), got ${Array.isArray(feeds) ? feeds.length : String(feeds)}.`);
  }
  const values = options.values ?? new Map<string, Tensor>();
  plan.inputs.forEach((input, i) => {
    if (values.has(input.id)) return;
    checkFeed(input.id, input, feeds[i]);
    values.set(input.id, feeds[i]);
  });
  const steps = stepIndex(plan);
  const targets = options.targets ?? plan.outputs;
  const alias = options.alias ?? NO_ALIAS;
  for (const id of [...targets, ...alias.keys(), ...alias.values()]) {
    if (!steps.has(id) && !plan.inputs.some((i) => i.id === id)) throw new RsError('UNKNOWN_NODE', `No node '${id}' in the graph.`, { node: id });
  }
  const taps = { activations: new Set(options.taps?.activations ?? []), gradients: new Set(options.taps?.gradients ?? []) };
  for (const id of [...taps.activations, ...taps.gradients]) {
    if (!steps.has(id)) {
      throw new RsError('UNKNOWN_NODE', `Cannot tap '${id}': the graph has no node with that id (nodes: ${plan.steps.map((s) => s.node.id).join(', ')}).`, { node: id });
    }
  }
  const out: RunResult = { outputs: [], losses: new Map(), metrics: new Map(), state: new Map() };
  const fused = activeFusions(plan, options, targets, alias, taps);
  const fusedAway = fusedDenseNodes(fused);
  const compute = (id: string, path: readonly string[]): Tensor => {
    const known = values.get(id);
    if (known) return known;
    const into = fused.get(id);
    if (into !== undefined) {
      // relu(dense(x)) as one product: the dense node runs with the activation fused.
      const denseStep = fusedStep(steps.get(into) as PlanStep);
      const inputs = denseStep.node.inputs.map((i) => compute(i, [...path, id]));
      const value = runStep(denseStep, inputs, params, options, out, taps);
      recordActivation(id, value, taps, options);
      values.set(id, value);
      return value;
    }
    const to = alias.get(id);
    if (to !== undefined) {
      if (path.includes(id)) throw new RsError('CYCLE', `Aliases form a cycle through '${id}'.`, { node: id });
      const value = compute(to, [...path, id]);
      values.set(id, value);
      return value;
    }
    const step = steps.get(id) as PlanStep;
    const inputs = step.node.inputs.map((i) => compute(i, [...path, id]));
    const run = (ins: Tensor[]): Tensor => runStep(step, ins, params, options, out, taps);
    const value = options.intercept?.(step, inputs, run) ?? run(inputs);
    values.set(id, value);
    return value;
  };
  try {
    // Needed nodes run in the plan's (topological) order, so that random draws (dropout,
    // noisy routing) happen in the same order whatever the targets; the recursion above only
    // resolves aliases and anything an alias reaches out of order. Known values (a shared
    // `values` cache) end the walk: what only they need is not recomputed.
    const needed =
      options.targets === undefined && alias === NO_ALIAS && options.values === undefined ? allNeeded(plan) : ancestors(plan.graph, targets, alias, options.values);
    for (const step of plan.steps) if (needed.has(step.node.id) && !alias.has(step.node.id) && !fusedAway.has(step.node.id)) compute(step.node.id, []);
    out.outputs = targets.map((t) => compute(t, []));
  } catch (error) {
    // New state values are kept outside every scope: release them when the pass fails.
    for (const t of out.state.values()) t.dispose();
    throw error;
  }
  return out;
}

/** @deprecated Use {@link execute} (same function; kept for plugins written against it). */
export const runPlan = execute;

const NO_ALIAS: ReadonlyMap<string, string> = new Map();
const FUSED_AWAY = new WeakMap<ReadonlyMap<string, string>, ReadonlySet<string>>();
const FUSED_STEP = new WeakMap<PlanStep, PlanStep>();

/** The dense nodes that `fused` runs inside their relu (cached per pair map: the plan's own in the common case). */
function fusedDenseNodes(fused: ReadonlyMap<string, string>): ReadonlySet<string> {
  let nodes = FUSED_AWAY.get(fused);
  if (!nodes) {
    nodes = new Set(fused.values());
    FUSED_AWAY.set(fused, nodes);
  }
  return nodes;
}

/** A dense step that applies its relu consumer too (made once per step). */
function fusedStep(step: PlanStep): PlanStep {
  let fusedOne = FUSED_STEP.get(step);
  if (!fusedOne) {
    fusedOne = { ...step, node: { ...step.node, attrs: { ...step.node.attrs, fusedActivation: 'relu' } } };
    FUSED_STEP.set(step, fusedOne);
  }
  return fusedOne;
}
const NEEDED = new WeakMap<Plan, Set<string>>();

/** The nodes the plan's outputs need (cached per plan: the common case of every step). */
function allNeeded(plan: Plan): Set<string> {
  let needed = NEEDED.get(plan);
  if (!needed) {
    needed = ancestors(plan.graph, plan.outputs);
    NEEDED.set(plan, needed);
  }
  return needed;
}
const STEP_INDEX = new WeakMap<Plan, Map<string, PlanStep>>();

function stepIndex(plan: Plan): Map<string, PlanStep> {
  let index = STEP_INDEX.get(plan);
  if (!index) {
    index = new Map(plan.steps.map((s) => [s.node.id, s]));
    STEP_INDEX.set(plan, index);
  }
  return index;
}

/**
 * The `ForwardContext` an op's forward receives: the one place the library builds it (the
 * executor for every node, the conformance harness for a single op). Auxiliary losses of the
 * same name add up; metrics and state are keyed `node/name` in `sink`, and a state value that is
 * replaced is released.
 */
export function forwardContext(nodeId: string, training: boolean, rng: Rng, sink: Pick<RunResult, 'losses' | 'metrics' | 'state'>): ForwardContext {
  return {
    nodeId,
    training,
    rng,
    addLoss: (name, value) => {
      const key = `${nodeId}/${name}`;
      const previous = sink.losses.get(key);
      sink.losses.set(key, previous ? tf.add(previous, value) : value);
    },
    addMetric: (name, value) => void sink.metrics.set(`${nodeId}/${name}`, value),
    setState: (param, value) => {
      const key = paramKey(nodeId, param);
      sink.state.get(key)?.dispose();
      sink.state.set(key, value);
    },
  };
}

/** Runs one node: its forward with the library's `ForwardContext`, plus taps. */
function runStep(step: PlanStep, inputs: Tensor[], params: Map<string, Tensor>, options: RunOptions, out: RunResult, taps: { activations: Set<string>; gradients: Set<string> }): Tensor {
  const { node, schema } = step;
  const nodeParams: Record<string, Tensor> = {};
  for (const name of step.paramNames) nodeParams[name] = params.get(paramKey(node.id, name)) as Tensor;
  const ctx = forwardContext(node.id, options.training, options.rng, out);
  let result = schema.forward(inputs, nodeParams, node.attrs, ctx);
  if (taps.gradients.has(node.id) && options.tapSink) {
    const sink = options.tapSink.gradients;
    const tap = tf.customGrad(((x: Tensor) => ({
      value: tf.clone(x),
      gradFunc: (dy: Tensor) => {
        const old = sink.get(node.id);
        sink.set(node.id, tf.keep(old ? tf.add(old, dy) : tf.clone(dy)));
        if (old) old.dispose();
        return dy;
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0]);
    result = tap(result);
  }
  recordActivation(node.id, result, taps, options);
  return result;
}

/** Keeps a copy of `value` in the activation tap sink when `id` is tapped. */
function recordActivation(id: string, value: Tensor, taps: { activations: Set<string> }, options: RunOptions): void {
  if (!taps.activations.has(id) || !options.tapSink) return;
  const sink = options.tapSink.activations;
  sink.get(id)?.dispose();
  sink.set(id, tf.keep(tf.clone(value)));
}
