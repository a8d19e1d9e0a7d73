import { RsError, type Dataset, type GraphDef, type OpRegistry, type Optimizer } from '@rs/core';
import { ProgressiveNet, type TaskId } from './progressive';
import type { AdapterOptions } from './column';
import { progressiveRegistry } from './learned-scale';
import { trainPlan, type TrainOptions } from './train';

/** ACC, BWT and FWT of an accuracy matrix (Lopez-Paz & Ranzato 2017, GEM, section 4). */
export interface ContinualMetrics {
  /** Average accuracy over all tasks after the last one is learned: mean_i R[T-1][i]. */
  acc: number;
  /** Backward transfer: mean over i < T-1 of R[T-1][i] - R[i][i] (negative: forgetting). */
  bwt: number;
  /** Forward transfer: mean over i >= 1 of R[i-1][i] - b[i] (needs the random-init accuracies b). */
  fwt?: number;
}

/**
 * Continual-learning metrics from `matrix[i][j]` = test accuracy on task j after learning
 * tasks 0..i (entries j > i + 1 are not needed and may be null). `baseline[j]`: accuracy on
 * task j of the model at random initialisation, for FWT.
 *
 * @example
 * continualMetrics([[0.99, null], [0.6, 0.98]]); // { acc: 0.79, bwt: -0.39 }
 */
export function continualMetrics(matrix: (number | null)[][], baseline?: number[]): ContinualMetrics {
  const t = matrix.length;
  const at = (i: number, j: number): number => {
    const v = matrix[i]?.[j];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new RsError('INVALID_ARGUMENT', `continualMetrics: matrix[${i}][${j}] must be a number (accuracy on task ${j} after learning task ${i}), got ${String(v)}.`, {});
    }
    return v;
  };
  if (t === 0) throw new RsError('INVALID_ARGUMENT', 'continualMetrics: the matrix is empty.', {});
  let acc = 0;
  for (let j = 0; j < t; j++) acc += at(t - 1, j);
  let bwt = 0;
  for (let j = 0; j < t - 1; j++) bwt += at(t - 1, j) - at(j, j);
  const out: ContinualMetrics = { acc: acc / t, bwt: t > 1 ? bwt / (t - 1) : 0 };
  if (baseline) {
    if (baseline.length !== t) throw new RsError('INVALID_ARGUMENT', `continualMetrics: baseline has ${baseline.length} entries for ${t} tasks.`, {});
    let fwt = 0;
    for (let j = 1; j < t; j++) fwt += at(j - 1, j) - baseline[j];
    out.fwt = t > 1 ? fwt / (t - 1) : 0;
  }
  return out;
}

/** A task of a sequence: tensors with int32 labels. */
export interface ContinualTask {
  id: TaskId;
  train: Dataset;
  test: Dataset;
  /** Architecture of this task's column (or network). Default: `options.graph`. */
  graph?: GraphDef;
  /** Epochs for this task. Default: `options.train.epochs`. */
  epochs?: number;
  /** Record this task's learning curve (with `options.curveEvery`). Default true. */
  curve?: boolean;
}

/**
 * How a sequence is learned: `progressive` (a column per task), `finetune` (one network trained
 * on each task in turn), `independent` (a fresh network per task), `randomFrozen` (Rusu et al.'s
 * baseline: a new column with laterals from a random, untrained, frozen column).
 */
export type Strategy = 'progressive' | 'finetune' | 'independent' | 'randomFrozen';

/** Options of {@link runSequence}. */
export interface SequenceOptions {
  /** Column (and baseline network) architecture: one input, one output. */
  graph: GraphDef;
  /** Seed of initialisation and shuffling. */
  seed?: number;
  train?: Omit<TrainOptions, 'onStep' | 'seed' | 'optimizer'>;
  /** A fresh optimizer for each task's training. Default: Adam, learning rate 1e-3. */
  optimizer?: () => Optimizer;
  adapter?: AdapterOptions;
  /** Record the trained task's test accuracy every this many steps (learning curves). */
  curveEvery?: number;
  registry?: OpRegistry;
}

/** What {@link runSequence} measured. */
export interface SequenceResult extends ContinualMetrics {
  strategy: Strategy;
  /** matrix[i][j]: test accuracy on task j after learning task i; j > i + 1 is null. */
  matrix: (number | null)[][];
  /** Accuracy of a randomly initialised network per task (FWT's b). */
  baseline: number[];
  /** Test accuracy while learning each task: [step, accuracy] pairs (with `curveEvery`). */
  curves: [number, number][][];
  /** Steps spent per task. */
  steps: number[];
  /** Parameters that exist after the last task (all networks together). */
  params: number;
}

/**
 * Learns the tasks in order with one strategy and measures the accuracy matrix, ACC, BWT and
 * FWT. Baselines (`finetune`, `independent`, `randomFrozen`) use the same architecture, seed,
 * optimizer settings and step counts as `progressive`, so one call per strategy gives a table.
 *
 * @example
 * const pnn = await runSequence('progressive', tasks, { graph, train: { epochs: 2 } });
 * const ft = await runSequence('finetune', tasks, { graph, train: { epochs: 2 } });
 * pnn.bwt; // 0: earlier columns are frozen
 */
export async function runSequence(strategy: Strategy, tasks: ContinualTask[], options: SequenceOptions): Promise<SequenceResult> {
  if (!['progressive', 'finetune', 'independent', 'randomFrozen'].includes(strategy)) {
    throw new RsError('INVALID_ARGUMENT', `Unknown strategy '${String(strategy)}': use progressive, finetune, independent or randomFrozen.`, {});
  }
  if (!Array.isArray(tasks) || tasks.length === 0) throw new RsError('INVALID_ARGUMENT', 'runSequence needs at least one task.', {});
  const seed = options.seed ?? 0;
  const graphOf = (task: ContinualTask): GraphDef => task.graph ?? options.graph;
  if (strategy === 'finetune' && tasks.some((task) => JSON.stringify(graphOf(task)) !== JSON.stringify(graphOf(tasks[0])))) {
    throw new RsError('INVALID_ARGUMENT', 'finetune trains one network across tasks: every task must use the same architecture.', {});
  }
  const registry = progressiveRegistry(options.registry);
  const t = tasks.length;
  const matrix: (number | null)[][] = tasks.map(() => tasks.map(() => null));
  const curves: [number, number][][] = [];
  const steps: number[] = [];
  const baseline = tasks.map((task, j) => {
    const fresh = ProgressiveNet.create(task.graph ?? options.graph, { task: task.id, seed: seed + 1000 + j, registry });
    try {
      return fresh.evaluate(task.test, task.id);
    } finally {
      fresh.dispose();
    }
  });
  // Each task's evaluator (a network and the task it answers), kept until the end.
  const nets: ProgressiveNet[] = [];
  const evaluators: (() => number)[] = [];
  const learn = async (net: ProgressiveNet, task: ContinualTask, i: number): Promise<void> => {
    const curve: [number, number][] = [];
    const every = task.curve === false ? undefined : options.curveEvery;
    const history = await net.train(task.id, task.train, {
      ...options.train,
      ...(task.epochs !== undefined ? { epochs: task.epochs } : {}),
      optimizer: options.optimizer?.(),
      seed: seed + i,
      onStep: every
        ? ({ step }) => {
            if (step % every === 0) curve.push([step, net.evaluate(task.test, task.id)]);
          }
        : undefined,
    });
    curves.push(curve);
    steps.push(history.steps);
  };
  let shared: ProgressiveNet | undefined;
  try {
    for (let i = 0; i < t; i++) {
      const task = tasks[i];
      if (strategy === 'progressive') {
        if (!shared) shared = ProgressiveNet.create(graphOf(task), { task: task.id, seed, registry });
        else shared.addColumn(task.id, { graph: graphOf(task), adapter: options.adapter });
        const net = shared;
        if (i > 0) matrix[i - 1][i] = net.evaluate(task.test, task.id);
        await learn(net, task, i);
        evaluators.push(() => net.evaluate(task.test, task.id));
      } else if (strategy === 'finetune') {
        shared ??= ProgressiveNet.create(graphOf(task), { task: 'shared', seed, registry });
        const net = shared;
        if (i > 0) matrix[i - 1][i] = net.evaluate(task.test, 'shared');
        net.model.resetOptimizerState();
        const curve: [number, number][] = [];
        const every = task.curve === false ? undefined : options.curveEvery;
        const history = await trainPlan(net.model, net.plan('shared'), task.train, {
          ...options.train,
          ...(task.epochs !== undefined ? { epochs: task.epochs } : {}),
          optimizer: options.optimizer?.(),
          seed: seed + i,
          onStep: every ? ({ step }) => void (step % every === 0 && curve.push([step, net.evaluate(task.test, 'shared')])) : undefined,
        });
        curves.push(curve);
        steps.push(history.steps);
        evaluators.push(() => net.evaluate(task.test, 'shared'));
      } else {
        // The random column has the first task's architecture, as the trained column it stands for.
        const withRandom = strategy === 'randomFrozen' && i > 0;
        let net = ProgressiveNet.create(withRandom ? graphOf(tasks[0]) : graphOf(task), { task: withRandom ? 'random' : task.id, seed: seed + i, registry });
        nets.push(net);
        if (withRandom) net.addColumn(task.id, { graph: graphOf(task), adapter: options.adapter });
        if (i > 0) matrix[i - 1][i] = net.evaluate(task.test, task.id);
        await learn(net, task, i);
        net = nets[nets.length - 1];
        evaluators.push(() => net.evaluate(task.test, task.id));
      }
      for (let j = 0; j <= i; j++) matrix[i][j] = evaluators[j]();
    }
    const params = [...(shared ? [shared] : []), ...nets].reduce((s, n) => s + n.model.counts().params, 0);
    return { strategy, matrix, baseline, curves, steps, params, ...continualMetrics(matrix, baseline) };
  } finally {
    shared?.dispose();
    for (const n of nets) n.dispose();
  }
}
