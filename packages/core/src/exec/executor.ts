import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import type { GraphDef, NodeDef, TensorInfo } from '../ir/types';
import { paramKey } from '../ir/types';
import type { ValidatedGraph } from '../ir/validate';
import type { OpRegistry } from '../ops/registry';
import type { ForwardContext, OpSchema, Rng } from '../ops/schema';

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
}

export function compile(graph: GraphDef, validated: ValidatedGraph, registry: OpRegistry): Plan {
  const names = new Map<string, string[]>();
  for (const spec of validated.paramSpecs.values()) names.set(spec.node, [...(names.get(spec.node) ?? []), spec.name]);
  return {
    graph,
    inputs: graph.inputs,
    outputs: graph.outputs,
    steps: validated.order.map((node) => ({
      node,
      schema: registry.get(node.op),
      paramNames: names.get(node.id) ?? [],
      output: validated.infos.get(node.id) as TensorInfo,
    })),
  };
}

/** Taps: record activations (forward values) and gradients (dLoss/dActivation) of named nodes. */
export interface Taps {
  activations?: string[];
  gradients?: string[];
}

export interface RunOptions {
  training: boolean;
  rng: Rng;
  taps?: Taps;
  /** Where tapped values go; values are kept (outside tidy) and owned by the caller. */
  tapSink?: { activations: Map<string, Tensor>; gradients: Map<string, Tensor> };
}

export interface RunResult {
  outputs: Tensor[];
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
 * Runs the plan on `feeds` with `params` (already masked). Call inside tf.tidy or a gradient
 * function: intermediate tensors are left to the caller's scope.
 */
export function runPlan(plan: Plan, feeds: Tensor[], params: Map<string, Tensor>, options: RunOptions): RunResult {
  if (feeds.length !== plan.inputs.length) {
    throw new RsError('INVALID_ARGUMENT', `The model takes ${plan.inputs.length} input(s) (${plan.inputs.map((i) => i.id).join(', ')}), got ${feeds.length}.`);
  }
  const values = new Map<string, Tensor>();
  plan.inputs.forEach((input, i) => {
    checkFeed(input.id, input, feeds[i]);
    values.set(input.id, feeds[i]);
  });
  const losses = new Map<string, Tensor>();
  const metrics = new Map<string, Tensor>();
  const state = new Map<string, Tensor>();
  const activationTaps = new Set(options.taps?.activations ?? []);
  const gradientTaps = new Set(options.taps?.gradients ?? []);
  for (const id of [...activationTaps, ...gradientTaps]) {
    if (!plan.steps.some((s) => s.node.id === id)) {
      throw new RsError('UNKNOWN_NODE', `Cannot tap '${id}': the graph has no node with that id (nodes: ${plan.steps.map((s) => s.node.id).join(', ')}).`, { node: id });
    }
  }
  try {
    runSteps(plan, values, params, options, { losses, metrics, state, activationTaps, gradientTaps });
  } catch (error) {
    // New state values are kept outside every scope: release them when the pass fails.
    for (const t of state.values()) t.dispose();
    throw error;
  }
  return { outputs: plan.outputs.map((o) => values.get(o) as Tensor), losses, metrics, state };
}

function runSteps(
  plan: Plan,
  values: Map<string, Tensor>,
  params: Map<string, Tensor>,
  options: RunOptions,
  out: { losses: Map<string, Tensor>; metrics: Map<string, Tensor>; state: Map<string, Tensor>; activationTaps: Set<string>; gradientTaps: Set<string> },
): void {
  const { losses, metrics, state, activationTaps, gradientTaps } = out;
  for (const step of plan.steps) {
    const { node, schema } = step;
    const inputs = node.inputs.map((i) => values.get(i) as Tensor);
    const nodeParams: Record<string, Tensor> = {};
    for (const name of step.paramNames) nodeParams[name] = params.get(paramKey(node.id, name)) as Tensor;
    const ctx: ForwardContext = {
      nodeId: node.id,
      training: options.training,
      rng: options.rng,
      addLoss: (name, value) => {
        const key = `${node.id}/${name}`;
        losses.set(key, losses.has(key) ? tf.add(losses.get(key) as Tensor, value) : value);
      },
      addMetric: (name, value) => metrics.set(`${node.id}/${name}`, value),
      setState: (param, value) => {
        const key = paramKey(node.id, param);
        const previous = state.get(key);
        if (previous) previous.dispose();
        state.set(key, value);
      },
    };
    let result = schema.forward(inputs, nodeParams, node.attrs, ctx);
    if (gradientTaps.has(node.id) && options.tapSink) {
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
    if (activationTaps.has(node.id) && options.tapSink) {
      const sink = options.tapSink.activations;
      sink.get(node.id)?.dispose();
      sink.set(node.id, tf.keep(tf.clone(result)));
    }
    values.set(node.id, result);
  }
}
