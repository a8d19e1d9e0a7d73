import { tf, RsError, ancestors, formatShape, paramKey, type Model, type Tensor } from '@rs/core';
import { valueAndGrads, type PlanStep, type Rng } from '@rs/core/extend';

/** How `execute` runs a graph; every field is optional. */
export interface ExecuteOptions {
  training?: boolean;
  rng?: Rng;
  /** Parameter values by key (masked); default: the model's own. */
  params?: Map<string, Tensor>;
  /** `node -> other`: the node takes `other`'s value and is not computed (layer skipping). */
  alias?: Map<string, string>;
  /** Values already known (inputs and computed nodes); filled as nodes run. */
  values?: Map<string, Tensor>;
  /** Receives new `state` parameter values (batchNorm statistics) of a training pass. */
  onState?: (key: string, value: Tensor) => void;
  /** Replaces the computation of a node (conditional computation); return undefined to run it. */
  intercept?: (step: PlanStep, inputs: Tensor[], run: (inputs: Tensor[]) => Tensor) => Tensor | undefined;
}

/**
 * Computes `targets` lazily: only the nodes they depend on run, aliased (skipped) nodes take
 * their alias's value and their interior is never computed. Call inside tf.tidy or a gradient
 * function. The scheduler under early exit, LayerDrop and slimmable execution.
 *
 * @example
 * const [logits] = tf.tidy(() => execute(model, [x], ['fc3'], { alias: new Map([['block1.res2', 'block0.res2']]) }));
 */
/** Checks input `index`'s declared shape and dtype before any op runs (a raw tfjs error otherwise). */
export function checkFeed(model: Model, index: number, value: Tensor): void {
  const input = model.plan.inputs[index];
  if (!(value instanceof tf.Tensor)) throw new RsError('INVALID_ARGUMENT', `Input '${input.id}' must be a tensor.`, { input: input.id });
  const ok = value.shape.length === input.shape.length && input.shape.every((d, a) => d === null || d === value.shape[a]) && value.dtype === input.dtype;
  if (!ok) {
    throw new RsError('SHAPE_MISMATCH', `Input '${input.id}' expects ${input.dtype} ${formatShape(input.shape)}, got ${value.dtype} ${formatShape(value.shape)}.`, { input: input.id });
  }
}

export function execute(model: Model, feeds: Tensor[], targets: string[], options: ExecuteOptions = {}): Tensor[] {
  const plan = model.plan;
  const steps = new Map(plan.steps.map((s) => [s.node.id, s]));
  const values = options.values ?? new Map<string, Tensor>();
  if (feeds.length !== plan.inputs.length) {
    throw new RsError('INVALID_ARGUMENT', `The model takes ${plan.inputs.length} input(s), got ${feeds.length}.`);
  }
  plan.inputs.forEach((input, i) => {
    if (values.has(input.id)) return;
    checkFeed(model, i, feeds[i]);
    values.set(input.id, feeds[i]);
  });
  const params = options.params ?? model.maskedParams();
  const alias = options.alias ?? new Map<string, string>();
  const training = options.training ?? false;
  const rng = options.rng ?? model.rng;
  const compute = (id: string, path: string[]): Tensor => {
    const known = values.get(id);
    if (known) return known;
    const to = alias.get(id);
    if (to !== undefined) {
      if (path.includes(id)) throw new RsError('CYCLE', `Aliases form a cycle through '${id}'.`, { node: id });
      const value = compute(to, [...path, id]);
      values.set(id, value);
      return value;
    }
    const step = steps.get(id);
    if (!step) throw new RsError('UNKNOWN_NODE', `No node '${id}' in the graph.`, { node: id });
    const inputs = step.node.inputs.map((i) => compute(i, [...path, id]));
    const run = (ins: Tensor[]): Tensor => {
      const nodeParams: Record<string, Tensor> = {};
      for (const name of step.paramNames) nodeParams[name] = params.get(paramKey(id, name)) as Tensor;
      return step.schema.forward(ins, nodeParams, step.node.attrs, {
        nodeId: id,
        training,
        rng,
        addLoss: () => undefined,
        addMetric: () => undefined,
        setState: (name, value) => {
          if (options.onState) options.onState(paramKey(id, name), value);
          else value.dispose();
        },
      });
    };
    const value = options.intercept?.(step, inputs, run) ?? run(inputs);
    values.set(id, value);
    return value;
  };
  return targets.map((t) => compute(t, []));
}

/** Nodes that computing `targets` runs under `alias` (for picking the parameters to differentiate). */
export function reachedNodes(model: Model, targets: string[], alias: Map<string, string> = new Map()): Set<string> {
  return ancestors(model.graph, targets, alias);
}

/** Trainable parameter keys of the nodes in `nodes`. */
export function trainableKeys(model: Model, nodes: Set<string>): string[] {
  return model.paramKeys().filter((k) => model.param(k).trainable && nodes.has(k.slice(0, k.lastIndexOf('/'))));
}

/**
 * Loss and gradients of `lossOf(values)` with respect to `keys`, where `forward(params)` runs the
 * graph with those parameters substituted. Gradients are returned kept; the caller disposes them.
 */
export function gradientsOf(
  model: Model,
  keys: string[],
  forward: (params: Map<string, Tensor>) => Tensor,
  substitute: (key: string, value: Tensor) => Tensor = (_k, v) => v,
): { loss: number; grads: Map<string, Tensor> } {
  const { value, grads } = tf.tidy(() => {
    const f = (...args: Tensor[]): Tensor => {
      const params = model.maskedParams();
      keys.forEach((k, i) => {
        const mask = model.param(k).mask;
        params.set(k, mask ? tf.mul(args[i], mask) : args[i]);
      });
      for (const [k, v] of params) params.set(k, substitute(k, v));
      return forward(params);
    };
    return valueAndGrads(f, keys.map((k) => model.param(k).value));
  });
  const loss = value.dataSync()[0];
  value.dispose();
  const out = new Map<string, Tensor>();
  keys.forEach((k, i) => {
    const g = grads[i];
    if (g) out.set(k, g);
  });
  return { loss, grads: out };
}
