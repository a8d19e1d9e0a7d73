import { tf, RsError, adam, ancestors, permutation, createRng, type Dataset, type Model, type Optimizer, type Tensor } from '@rs/core';
import { execute, objectiveStep, resolveLoss } from '@rs/core/extend';

/** Options of column training. */
export interface TrainOptions {
  /** Passes over the data. Default 1. */
  epochs?: number;
  /** Default 32. */
  batchSize?: number;
  /** Stop after this many steps. */
  maxSteps?: number;
  /** Default: Adam, learning rate 1e-3. */
  optimizer?: Optimizer;
  /** Seeds shuffling and dropout. Default 0. */
  seed?: number;
  /** Called after every step; may be async (e.g. to evaluate). `stop()` ends training. */
  onStep?: (info: { step: number; loss: number; stop(): void }) => void | Promise<void>;
}

/** What training did. */
export interface TrainHistory {
  steps: number;
  losses: number[];
}

/** What computing one output needs: the output node, the nodes it depends on and their parameters. */
export interface TaskPlan {
  output: string;
  nodes: Set<string>;
  /** Parameter keys of those nodes, in graph order. */
  params: string[];
}

/** The part of `model`'s graph that computes `output` (other heads and later columns are not run). */
export function planFor(model: Model, output: string): TaskPlan {
  const nodes = ancestors(model.graph, [output]);
  return { output, nodes, params: model.paramKeys().filter((k) => nodes.has(k.slice(0, k.lastIndexOf('/')))) };
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RsError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${String(batchSize)}.`, {});
}

/** The single input tensor of `data` and its row count, checked against the targets. */
function inputOf(data: Dataset): { x: Tensor; n: number } {
  const x = Array.isArray(data?.x) ? data.x[0] : data?.x;
  if (!x || !data.y) throw new RsError('DATA_MISMATCH', 'The data needs an input tensor x and a target tensor y.', {});
  const n = x.shape[0];
  if (data.y.shape[0] !== n || n === 0) throw new RsError('DATA_MISMATCH', `Inputs have ${n} rows and targets ${data.y.shape[0]}; they must match and be non-empty.`, {});
  return { x, n };
}

/** Runs a task's output in inference mode, in batches; the caller owns the result. */
export function predictPlan(model: Model, plan: TaskPlan, x: Tensor, batchSize = 512): Tensor {
  checkBatchSize(batchSize);
  const run = (input: Tensor): Tensor =>
    tf.tidy(() => {
      const result = execute(model.plan, [input], model.forwardParams(), { training: false, rng: model.rng, targets: [plan.output] });
      for (const t of result.state.values()) t.dispose();
      return result.outputs[0];
    });
  const n = x.shape[0];
  if (n <= batchSize) return run(x);
  const parts: Tensor[] = [];
  for (let start = 0; start < n; start += batchSize) parts.push(tf.tidy(() => run(tf.slice(x, start, Math.min(batchSize, n - start)))));
  const out = tf.concat(parts, 0);
  for (const p of parts) p.dispose();
  return out;
}

/** Classification accuracy of a task's output (argmax vs int32 labels). */
export function accuracyOf(model: Model, plan: TaskPlan, data: Dataset, batchSize = 512): number {
  checkBatchSize(batchSize);
  const { x, n } = inputOf(data);
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    correct += tf.tidy(() => {
      const out = predictPlan(model, plan, tf.slice(x, start, size), batchSize);
      const hits = tf.equal(tf.argMax(out, -1), tf.cast(tf.reshape(tf.slice(data.y, start, size), [-1]), 'int32'));
      return tf.sum(tf.cast(hits, 'float32')).dataSync()[0];
    });
  }
  return correct / n;
}

/**
 * Trains the trainable parameters among `plan`'s on softmax cross-entropy (plus any auxiliary
 * losses of the ops it runs, e.g. a MoE layer's balance loss). Running statistics (`state`
 * params) are only written for keys that `ownsState` accepts, so frozen columns stay exactly as
 * they were.
 */
export async function trainPlan(model: Model, plan: TaskPlan, data: Dataset, options: TrainOptions = {}, ownsState: (key: string) => boolean = () => true): Promise<TrainHistory> {
  const keys = plan.params.filter((k) => model.param(k).trainable);
  if (keys.length === 0) throw new RsError('INVALID_ARGUMENT', 'Nothing to train: every parameter this output depends on is frozen.', {});
  const { x, n } = inputOf(data);
  const epochs = options.epochs ?? 1;
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(epochs) || epochs < 1) throw new RsError('INVALID_ARGUMENT', `epochs must be a positive integer, got ${String(epochs)}.`, {});
  checkBatchSize(batchSize);
  if (options.maxSteps !== undefined && (!Number.isInteger(options.maxSteps) || options.maxSteps < 1)) {
    throw new RsError('INVALID_ARGUMENT', `maxSteps must be a positive integer, got ${String(options.maxSteps)}.`, {});
  }
  const optimizer = options.optimizer ?? adam();
  const lossFn = resolveLoss('softmaxCrossEntropy');
  const rng = createRng(options.seed ?? 0);
  const history: TrainHistory = { steps: 0, losses: [] };
  let stopped = false;
  const stop = (): void => {
    stopped = true;
  };
  for (let epoch = 0; epoch < epochs && !stopped; epoch++) {
    const order = permutation(n, rng);
    for (let start = 0; start < n && !stopped; start += batchSize) {
      const [bx, by] = tf.tidy(() => {
        const index = tf.tensor1d(order.subarray(start, Math.min(n, start + batchSize)), 'int32');
        return [tf.gather(x, index), tf.gather(data.y, index)];
      });
      let loss: number;
      try {
        ({ loss } = objectiveStep(model, optimizer, (pass) => lossFn(pass.run([bx], { targets: [plan.output] })[0], by), { params: keys, rng, ownsState }));
      } finally {
        bx.dispose();
        by.dispose();
      }
      history.steps += 1;
      history.losses.push(loss);
      await options.onStep?.({ step: history.steps, loss, stop });
      if (options.maxSteps !== undefined && history.steps >= options.maxSteps) stopped = true;
    }
  }
  return history;
}
