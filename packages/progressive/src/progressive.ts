import { tf, Model, RsError, type Dataset, type GraphDef, type JournalEntry, type OpRegistry, type Tensor } from '@rs/core';
import { analyzeColumn, buildColumn, lateralIds, sumId, type AdapterOptions, type ColumnShape, type LateralIds } from './column';
import { progressiveRegistry } from './learned-scale';
import { accuracyOf, planFor, predictPlan, trainPlan, type TaskPlan, type TrainHistory, type TrainOptions } from './train';

/** A task identifier: a string or an integer. */
export type TaskId = string | number;

/** One column of a progressive network. */
export interface ColumnInfo {
  task: TaskId;
  /** Position (0 for the first column). */
  index: number;
  /** Node id prefix, `col{index}/`. */
  prefix: string;
  /** The column's architecture (unprefixed). */
  graph: GraphDef;
  shape: ColumnShape;
}

/** Options of {@link ProgressiveNet.create}. */
export interface CreateProgressiveOptions {
  /** Task of the first column. */
  task: TaskId;
  /** Seed of parameter initialisation. Default 0. */
  seed?: number;
  /** Op registry; `learnedScale` is registered into it. Default: a new registry with the built-ins. */
  registry?: OpRegistry;
}

/** Options of {@link addColumn}. */
export interface AddColumnOptions {
  /** Architecture of the new column (one input, one output). Default: the first column's. */
  graph?: GraphDef;
  adapter?: AdapterOptions;
}

/** Parameters of one column: its own layers and its lateral adapters. */
export interface ColumnParams {
  task: TaskId;
  index: number;
  own: number;
  adapters: number;
  total: number;
}

/** One lateral adapter and its strength. */
export interface LateralInfo {
  task: TaskId;
  column: number;
  layer: string;
  ids: LateralIds;
  params: number;
  /** |alpha| * ||V||_F * ||U||_F: a bound on how much the adapter can add. */
  score: number;
}

const TECHNIQUE = 'progressive';

interface ColumnRecord {
  kind: 'column';
  task: TaskId;
  index: number;
  output: string;
  graph: GraphDef;
}

function checkTaskId(task: unknown): TaskId {
  if ((typeof task === 'string' && task.length > 0) || (typeof task === 'number' && Number.isInteger(task))) return task;
  throw new RsError('INVALID_ARGUMENT', `A task id is a non-empty string or an integer, got ${JSON.stringify(task) ?? String(task)}.`, { task });
}

/**
 * A progressive neural network (Rusu et al. 2016) over one `@rs/core` Model: one column per
 * task, earlier columns frozen, non-linear lateral adapters from every earlier column's layer
 * i-1 into the new column's layer i, one output (head) per task. Every change is a journaled
 * core edit, and the task list is read back from the journal after a load.
 *
 * @example
 * const net = ProgressiveNet.create(lenet300100({ hidden: [64, 64], classes: 2 }), { task: 'a' });
 * await net.train('a', dataA, { epochs: 3 });
 * net.addColumn('b');                       // col0 frozen; col1 with laterals from col0
 * await net.train('b', dataB, { epochs: 3 });
 * const logits = net.predict(x, 'a');       // bit-identical to before 'b' was trained
 */
export class ProgressiveNet {
  readonly model: Model;
  private cols: ColumnInfo[];
  private readonly plans = new Map<number, { version: number; plan: TaskPlan }>();

  private constructor(model: Model, columns: ColumnInfo[]) {
    this.model = model;
    this.cols = columns;
  }

  /** A network with one column (the architecture `base`, ids prefixed `col0/`) for `options.task`. */
  static create(base: GraphDef, options: CreateProgressiveOptions): ProgressiveNet {
    const task = checkTaskId(options?.task);
    const registry = progressiveRegistry(options.registry);
    const shape = analyzeColumn(base, registry);
    const prefix = 'col0/';
    const { nodes, output } = buildColumn(base, shape, prefix, []);
    const model = Model.create({ inputs: base.inputs, nodes, outputs: [output] }, { seed: options.seed ?? 0, registry });
    const record: ColumnRecord = { kind: 'column', task, index: 0, output, graph: base };
    model.edit(() => undefined, { technique: TECHNIQUE, reason: `column 0 for task ${JSON.stringify(task)}`, details: { progressive: record } });
    return new ProgressiveNet(model, [{ task, index: 0, prefix, graph: base, shape }]);
  }

  /**
   * The progressive network stored in `model` (e.g. after `loadFromBuffer` with
   * `progressiveRegistry()`), read from the journal.
   */
  static fromModel(model: Model): ProgressiveNet {
    const columns: ColumnInfo[] = [];
    for (const entry of model.journal) {
      const record = (entry.details?.progressive ?? undefined) as ColumnRecord | undefined;
      if (entry.technique !== TECHNIQUE || record?.kind !== 'column') continue;
      const shape = analyzeColumn(record.graph, model.registry);
      columns.push({ task: record.task, index: record.index, prefix: `col${record.index}/`, graph: record.graph, shape });
    }
    if (columns.length === 0) throw new RsError('INVALID_ARGUMENT', 'This model has no progressive columns in its journal (was it made by ProgressiveNet?).', {});
    const outputs = model.graph.outputs;
    columns.forEach((c, i) => {
      if (c.index !== i || !outputs[i]?.startsWith(c.prefix)) {
        throw new RsError('IO_MISMATCH', `Column ${c.index} (task ${JSON.stringify(c.task)}) does not match graph output ${i} ('${outputs[i] ?? 'none'}').`, {});
      }
    });
    return new ProgressiveNet(model, columns);
  }

  /** Tasks in column order. */
  get tasks(): TaskId[] {
    return this.cols.map((c) => c.task);
  }

  /** The columns, oldest first. */
  get columns(): readonly ColumnInfo[] {
    return this.cols;
  }

  /** The column of `task`; throws UNKNOWN_TASK. */
  column(task: TaskId): ColumnInfo {
    const column = this.cols.find((c) => c.task === task);
    if (!column) {
      throw new RsError('UNKNOWN_TASK', `No column for task ${JSON.stringify(task) ?? String(task)}. Known tasks: ${this.cols.map((c) => JSON.stringify(c.task)).join(', ')}.`, { task });
    }
    return column;
  }

  /** The part of the network that computes `task`'s output (only its column and earlier ones run). */
  plan(task: TaskId): TaskPlan {
    const column = this.column(task);
    const cached = this.plans.get(column.index);
    if (cached && cached.version === this.model.version) return cached.plan;
    const plan = planFor(this.model, this.outputOf(task));
    this.plans.set(column.index, { version: this.model.version, plan });
    return plan;
  }

  /** The node whose output is `task`'s logits: graph output `column.index`. */
  outputOf(task: TaskId): string {
    return this.model.graph.outputs[this.column(task).index];
  }

  /** See {@link addColumn}. */
  addColumn(task: TaskId, options: AddColumnOptions = {}): JournalEntry {
    return addColumn(this, task, options);
  }

  /** @internal Records a column committed by `addColumn`. */
  pushColumn(column: ColumnInfo): void {
    this.cols = [...this.cols, column];
  }

  /** Logits of `task` for `x` (only that task's column and the earlier ones run). */
  predict(x: Tensor, task: TaskId, options: { batchSize?: number } = {}): Tensor {
    return predictPlan(this.model, this.plan(task), x, options.batchSize);
  }

  /** Accuracy of `task`'s head on `data` (int32 labels). */
  evaluate(data: Dataset, task: TaskId): number {
    return accuracyOf(this.model, this.plan(task), data);
  }

  /**
   * Trains `task`'s column (its own layers, adapters and head); frozen columns do not change,
   * not even their running statistics.
   */
  async train(task: TaskId, data: Dataset, options: TrainOptions = {}): Promise<TrainHistory> {
    const column = this.column(task);
    return trainPlan(this.model, this.plan(task), data, options, (key) => key.startsWith(column.prefix));
  }

  /** Parameters per column: own layers and lateral adapters (adapters grow with the column count). */
  columnParams(): ColumnParams[] {
    const perNode = new Map(this.model.counts().perNode.map((n) => [n.node, n.params]));
    const adapterNodes = new Set<string>();
    for (const info of this.laterals()) for (const id of [info.ids.scale, info.ids.proj, info.ids.act, info.ids.lateral]) adapterNodes.add(id);
    return this.cols.map((c) => {
      let own = 0;
      let adapters = 0;
      for (const [node, params] of perNode) {
        if (!node.startsWith(c.prefix)) continue;
        if (adapterNodes.has(node)) adapters += params;
        else own += params;
      }
      return { task: c.task, index: c.index, own, adapters, total: own + adapters };
    });
  }

  /** The lateral adapters present in the graph (optionally of one task's column), with scores. */
  laterals(task?: TaskId): LateralInfo[] {
    const present = new Set(this.model.graph.nodes.map((n) => n.id));
    const columns = task === undefined ? this.cols : [this.column(task)];
    const perNode = new Map(this.model.counts().perNode.map((n) => [n.node, n.params]));
    const out: LateralInfo[] = [];
    for (const c of columns) {
      for (const layer of c.shape.layers.slice(1)) {
        for (let from = 0; from < c.index; from++) {
          const ids = lateralIds(c.prefix, layer.node, from);
          if (!present.has(ids.lateral)) continue;
          const score = tf.tidy(() => {
            const alpha = tf.abs(this.model.param(`${ids.scale}/alpha`).value);
            const v = tf.norm(this.model.param(`${ids.proj}/kernel`).value);
            const u = tf.norm(this.model.param(`${ids.lateral}/kernel`).value);
            return tf.mul(tf.mul(tf.reshape(alpha, []), v), u).dataSync()[0];
          });
          const params = [ids.scale, ids.proj, ids.act, ids.lateral].reduce((s, id) => s + (perNode.get(id) ?? 0), 0);
          out.push({ task: c.task, column: c.index, layer: layer.node, ids, params, score });
        }
      }
    }
    return out;
  }

  /** Releases the model's tensors. */
  dispose(): void {
    this.model.dispose();
  }
}

/**
 * Adds a column for a new task (Rusu et al. 2016): freezes every existing parameter
 * (`setTrainable`), inserts the new column's nodes (the first column's architecture, or
 * `options.graph`) with a non-linear lateral adapter from each earlier column's layer i-1 into
 * its layer i, and adds its head as a new graph output. One journaled core edit; on any error
 * (UNKNOWN_TASK is never raised here, but a duplicate task id is INVALID_ARGUMENT and a column
 * that does not fit is SHAPE_MISMATCH) the network is exactly as before.
 *
 * @example
 * const entry = addColumn(net, 'task-2');
 * entry.params; // { before, after }: the new column plus its adapters
 */
export function addColumn(net: ProgressiveNet, task: TaskId, options: AddColumnOptions = {}): JournalEntry {
  checkTaskId(task);
  if (net.columns.some((c) => c.task === task)) {
    throw new RsError('INVALID_ARGUMENT', `Task ${JSON.stringify(task)} already has column ${net.column(task).index}; task ids are unique.`, { task });
  }
  const model = net.model;
  const graph = options.graph ?? net.columns[0].graph;
  const shape = analyzeColumn(graph, model.registry);
  const index = net.columns.length;
  const prefix = `col${index}/`;
  const earlier = net.columns.map((c) => ({ index: c.index, prefix: c.prefix, shape: c.shape }));
  const { nodes, output } = buildColumn(graph, shape, prefix, earlier, options.adapter);
  const record: ColumnRecord = { kind: 'column', task, index, output, graph };
  const outputs = model.graph.outputs;
  const entry = model.edit(
    (tx) => {
      for (const key of model.paramKeys()) if (model.param(key).trainable) tx.setTrainable(key, false);
      for (const node of nodes) tx.insertNode(node);
      tx.setOutputs([...outputs, output]);
    },
    { technique: TECHNIQUE, reason: `column ${index} for task ${JSON.stringify(task)}, laterals from ${index} earlier column(s)`, details: { progressive: record } },
  );
  net.pushColumn({ task, index, prefix, graph, shape });
  return entry;
}

/** Options of {@link removeWeakLaterals}. */
export interface RemoveLateralsOptions {
  /** Remove laterals whose score is below this. */
  threshold?: number;
  /** Or remove this fraction (0..1) of the column's laterals, weakest first. */
  fraction?: number;
}

/**
 * Compression: removes `task`'s weakest lateral adapters (by |alpha| ||V|| ||U||) in one
 * journaled edit, rewiring each layer's sum (a layer left with no laterals reads its own
 * output directly). Only that column's function changes; earlier columns are untouched.
 *
 * @example
 * const { removed } = removeWeakLaterals(net, 'task-3', { fraction: 0.5 });
 */
export function removeWeakLaterals(net: ProgressiveNet, task: TaskId, options: RemoveLateralsOptions): { removed: LateralInfo[]; entry?: JournalEntry } {
  const column = net.column(task);
  const all = net.laterals(task).sort((a, b) => a.score - b.score);
  let chosen: LateralInfo[];
  if (options.threshold !== undefined) {
    if (!Number.isFinite(options.threshold)) throw new RsError('INVALID_ARGUMENT', `threshold must be a finite number, got ${String(options.threshold)}.`, {});
    chosen = all.filter((l) => l.score < (options.threshold as number));
  } else if (options.fraction !== undefined) {
    if (!(options.fraction >= 0 && options.fraction <= 1)) throw new RsError('INVALID_ARGUMENT', `fraction must be in [0, 1], got ${String(options.fraction)}.`, {});
    chosen = all.slice(0, Math.floor(options.fraction * all.length));
  } else {
    throw new RsError('INVALID_ARGUMENT', 'removeWeakLaterals needs a threshold or a fraction.', {});
  }
  if (chosen.length === 0) return { removed: [] };
  return { removed: chosen, entry: removeLaterals(net, column, chosen) };
}

function removeLaterals(net: ProgressiveNet, column: ColumnInfo, chosen: LateralInfo[]): JournalEntry {
  const graph = net.model.graph;
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const byLayer = new Map<string, Set<string>>();
  for (const l of chosen) byLayer.set(l.layer, (byLayer.get(l.layer) ?? new Set()).add(l.ids.lateral));
  return net.model.edit(
    (tx) => {
      for (const [layer, drop] of byLayer) {
        const id = sumId(column.prefix, layer);
        const sum = byId.get(id);
        if (!sum) throw new RsError('UNKNOWN_NODE', `No lateral sum '${id}'.`, { node: id });
        const remaining = sum.inputs.filter((i) => !drop.has(i));
        if (remaining.length >= 2) tx.replaceNode(id, { op: 'add', inputs: remaining, attrs: {} });
        else tx.removeNode(id, { bypass: remaining[0] });
      }
      for (const l of chosen) for (const id of [l.ids.lateral, l.ids.act, l.ids.proj, l.ids.scale]) tx.removeNode(id);
    },
    {
      technique: TECHNIQUE,
      reason: `removed ${chosen.length} weak lateral adapter(s) of column ${column.index}`,
      details: { progressive: { kind: 'compress', column: column.index, laterals: chosen.map((l) => ({ layer: l.layer, from: l.ids.from, score: l.score })) } },
    },
  );
}
