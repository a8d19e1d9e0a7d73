/**
 * A test technique, written by following docs/add-a-technique.md alone: `scaledRelu`, a ReLU
 * with a learned per-unit scale (`y = relu(x) * scale`), and what it provides to the other
 * layers through the registry: a pruning score `absScale` (units ranked by |scale|), a report
 * section `scaleStats`, and the op's ONNX lowering. It imports @rs/core and @rs/core/extend only.
 */
import { RsError, formatShape, splitParamKey, tf, type Model, type OpRegistry, type OpSchema, type Optimizer, type Tensor } from '@rs/core';
import { objectiveStep, type ImportanceScore, type OnnxRule, type ReportSection } from '@rs/core/extend';

/** The op: a ReLU whose output units are scaled by a learned per-unit factor (initially 1). */
export const scaledRelu: OpSchema<{ initialScale?: number }> = {
  name: 'scaledRelu',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (attrs.initialScale !== undefined && !Number.isFinite(attrs.initialScale)) ctx.failAttrs('initialScale must be a finite number');
    if (x.shape.length < 2 || x.shape[x.shape.length - 1] === null) ctx.fail(`expects a known last axis, got ${formatShape(x.shape)}`);
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const units = x.shape[x.shape.length - 1] as number;
    return { scale: { shape: [units], init: { kind: 'constant', value: attrs.initialScale ?? 1 } } };
  },
  forward([x], { scale }) {
    return tf.mul(tf.relu(x), scale);
  },
  // A per-unit parameter on an elementwise op (docs/add-an-op.md, section 4).
  units(u) {
    const l = u.input(0);
    u.consume(l, 'scale', 0);
    return l;
  },
  flops: (_attrs, _inputs, output) => 2 * output.shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1),
};

/** Whether parameter `key` is the scale of a `scaledRelu` node of `model`. */
function isScale(model: Model, key: string): boolean {
  const [node, name] = splitParamKey(key);
  return name === 'scale' && model.graph.nodes.some((n) => n.id === node && n.op === scaledRelu.name);
}

/**
 * Pruning score `absScale`: |scale| for the scales of `scaledRelu` nodes, 0 for every other
 * weight, so a unit group's score is the |scale| its units are multiplied by.
 */
export const absScale: ImportanceScore = {
  name: 'absScale',
  needsData: false,
  weights: (model, params) => {
    const out = new Map<string, Tensor>();
    try {
      for (const key of params) {
        const value = model.param(key).value;
        out.set(key, isScale(model, key) ? tf.abs(value) : tf.zerosLike(value));
      }
    } catch (error) {
      for (const t of out.values()) t.dispose();
      throw error;
    }
    return out;
  },
};

/** One row of the `scaleStats` section. */
export interface ScaleStatsRow {
  node: string;
  units: number;
  min: number;
  max: number;
  meanAbs: number;
}

/** Report section `scaleStats`: statistics of each `scaledRelu` node's scales (no data needed). */
export const scaleStatsSection: ReportSection<{ rows: ScaleStatsRow[]; reason?: string }> = {
  section: 'scaleStats',
  title: 'Learned scales',
  collect: ({ model }) => {
    const rows: ScaleStatsRow[] = [];
    for (const node of model.graph.nodes) {
      if (node.op !== scaledRelu.name) continue;
      const values = model.param(`${node.id}/scale`).value.dataSync();
      let min = Infinity;
      let max = -Infinity;
      let sumAbs = 0;
      for (const v of values) {
        min = Math.min(min, v);
        max = Math.max(max, v);
        sumAbs += Math.abs(v);
      }
      rows.push({ node: node.id, units: values.length, min, max, meanAbs: sumAbs / values.length });
    }
    return rows.length > 0 ? { rows } : { rows, reason: 'no scaledRelu node in the model' };
  },
};

/** The ONNX lowering of `scaledRelu`: `Mul(Relu(x), scale)`. */
export const scaledReluOnnx: OnnxRule = {
  op: scaledRelu.name,
  emit: (ctx) => ctx.op('Mul', [ctx.op('Relu', [ctx.inputNames[0]]), ctx.param('scale')]),
};

/**
 * Sets the scales of `scaledRelu` node `node` as one journaled edit (model unchanged on error).
 *
 * @example
 * setScales(model, 'act1', [1, 0.1, 2]);
 */
export function setScales(model: Model, node: string, values: number[]): void {
  const key = `${node}/scale`;
  if (!isScale(model, key)) throw new RsError('INVALID_ARGUMENT', `setScales: '${node}' is not a scaledRelu node.`, { node });
  model.edit(
    (tx) => {
      const value = tf.tensor1d(values);
      try {
        tx.setParam(key, value);
      } finally {
        value.dispose();
      }
    },
    { technique: 'scaledRelu', reason: `set the ${values.length} scales of ${node}` },
  );
}

/**
 * Trains only the scales for one step on `loss` of the model's outputs (core's one training
 * step: auxiliary losses, refusal of a non-finite loss, one atomic update).
 */
export function trainScales(model: Model, optimizer: Optimizer, x: Tensor, loss: (outputs: Tensor[]) => Tensor): number {
  const params = model.paramKeys().filter((key) => isScale(model, key));
  return objectiveStep(model, optimizer, (pass) => loss(pass.run(x)), { params }).loss;
}

/** Registers `scaledRelu` and provides its score, report section and ONNX lowering. */
export function register(registry: OpRegistry): OpRegistry {
  return registry
    .register(scaledRelu)
    .provide('score', absScale.name, absScale)
    .provide('report', scaleStatsSection.section, scaleStatsSection)
    .provide('onnx', scaledRelu.name, scaledReluOnnx);
}
