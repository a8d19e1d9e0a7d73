import { tf, RsError, ancestors, formatShape, softmaxCrossEntropy, type Model, type NodeDef, type Optimizer, type Tensor } from '@rs/core';
import { execute, objectiveStep } from '@rs/core/extend';

/** Checks the input's declared shape and dtype before anything runs (a raw tfjs error otherwise). */
function checkFeed(model: Model, value: Tensor): void {
  const input = model.plan.inputs[0];
  if (!(value instanceof tf.Tensor)) throw new RsError('INVALID_ARGUMENT', `Input '${input.id}' must be a tensor.`, { input: input.id });
  const ok = value.shape.length === input.shape.length && input.shape.every((d, a) => d === null || d === value.shape[a]) && value.dtype === input.dtype;
  if (!ok) {
    throw new RsError('SHAPE_MISMATCH', `Input '${input.id}' expects ${input.dtype} ${formatShape(input.shape)}, got ${value.dtype} ${formatShape(value.shape)}.`, { input: input.id });
  }
}

/** Where and how to attach an exit head. */
export interface AddExitOptions {
  /** The node whose output feeds the exit. */
  at: string;
  /** Id prefix of the head's nodes; the logits node is `${id}` itself. Default `exit:${at}`. */
  id?: string;
  classes: number;
  /** Max-pool the input first with this pool size (rank-4 inputs only); keeps the head cheap. */
  pool?: number;
  /** Hidden dense layers (ReLU) before the logits. Default none. */
  hidden?: number[];
  reason?: string;
}

/**
 * Attaches an exit head (optional pooling, flatten, dense layers, logits) at `at` and adds its
 * logits as a graph output placed before the final output. One journaled transaction.
 *
 * @example
 * const exitId = addExit(model, { at: 'pool1', classes: 10 }); // outputs: [exitId, 'fc3']
 */
export function addExit(model: Model, options: AddExitOptions): string {
  const graph = model.graph;
  const source = graph.nodes.find((n) => n.id === options.at) ?? graph.inputs.find((i) => i.id === options.at);
  if (!source) {
    throw new RsError('UNKNOWN_NODE', `addExit: no node '${options.at}' to attach an exit to. Nodes: ${graph.nodes.map((n) => n.id).join(', ')}.`, { node: options.at });
  }
  if (!Number.isInteger(options.classes) || options.classes < 2) {
    throw new RsError('INVALID_ARGUMENT', `addExit: classes must be an integer >= 2, got ${String(options.classes)}.`);
  }
  const id = options.id ?? `exit:${options.at}`;
  const rank = model.validated.infos.get(options.at)?.shape.length ?? 2;
  const nodes: NodeDef[] = [];
  let x = options.at;
  const push = (suffix: string, op: string, attrs: Record<string, unknown>): void => {
    const nodeId = `${id}.${suffix}`;
    nodes.push({ id: nodeId, op, inputs: [x], attrs } as NodeDef);
    x = nodeId;
  };
  if (options.pool !== undefined) {
    if (rank !== 4) throw new RsError('INVALID_ARGUMENT', `addExit: pool needs a rank-4 input, '${options.at}' has rank ${rank}.`);
    push('pool', 'maxPool2d', { poolSize: options.pool });
  }
  if (rank > 2) push('flatten', 'flatten', {});
  (options.hidden ?? []).forEach((units, i) => {
    push(`fc${i}`, 'dense', { units });
    push(`relu${i}`, 'relu', {});
  });
  nodes.push({ id, op: 'dense', inputs: [x], attrs: { units: options.classes } } as NodeDef);
  const outputs = graph.outputs;
  model.edit(
    (tx) => {
      for (const node of nodes) tx.insertNode(node);
      tx.setOutputs([...outputs.slice(0, -1), id, outputs[outputs.length - 1]]);
    },
    { technique: 'dynamic', reason: options.reason ?? `early exit at '${options.at}'` },
  );
  return id;
}

/** The graph outputs in execution order: early exits first, the final output last. */
export function exitOrder(model: Model): string[] {
  // An exit is earlier when fewer nodes feed it (exit heads are appended after the trunk).
  const cost = new Map(model.plan.outputs.map((o) => [o, ancestors(model.graph, [o]).size]));
  return [...model.plan.outputs].sort((a, b) => (cost.get(a) as number) - (cost.get(b) as number));
}

/** Exit rules: `entropy` exits when the softmax entropy (nats) is <= threshold (BranchyNet); `confidence` when the max softmax probability is >= threshold. */
export type ExitRule = 'entropy' | 'confidence';

/** Per-row score of logits `[n, classes]` under `rule` (entropy in nats, or max probability). */
export function exitScores(logits: Tensor, rule: ExitRule): Tensor {
  if (rule !== 'entropy' && rule !== 'confidence') throw new RsError('INVALID_ARGUMENT', `Unknown exit rule '${String(rule)}'; use 'entropy' or 'confidence'.`, { rule });
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    if (rule === 'confidence') return tf.exp(tf.max(logp, -1));
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
  });
}

/** Throws a typed error unless `threshold` is valid for `rule` with `classes` classes. */
export function checkThreshold(rule: ExitRule, threshold: number, classes: number): void {
  if (rule !== 'entropy' && rule !== 'confidence') throw new RsError('INVALID_ARGUMENT', `Unknown exit rule '${String(rule)}': use 'entropy' or 'confidence'.`);
  const max = rule === 'entropy' ? Math.log(classes) : 1;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0 || threshold > max) {
    throw new RsError(
      'INVALID_ARGUMENT',
      `Threshold ${String(threshold)} is out of range for rule '${rule}': it must lie in [0, ${max.toFixed(4)}]${rule === 'entropy' ? ` (entropy of ${classes} classes is at most ln ${classes})` : ''}.`,
      { rule, threshold },
    );
  }
}

/** Whether a row with `score` leaves at an exit with `threshold` under `rule` (entropy: score <= threshold; confidence: score >= threshold). */
export function exitPasses(rule: ExitRule, score: number, threshold: number): boolean {
  return rule === 'entropy' ? score <= threshold : score >= threshold;
}

/**
 * One joint training step of a multi-exit network: the loss is `sum_i weights[i] * CE(exit_i)`
 * over the exits in execution order (BranchyNet weighs the first exit highest, e.g. [1, 0.3]),
 * plus the auxiliary losses (e.g. MoE balance and z-losses) of the layers that run.
 *
 * @example
 * const loss = multiExitStep(model, x, y, optimizer, [1, 0.3]);
 */
export function multiExitStep(model: Model, x: Tensor, y: Tensor, optimizer: Optimizer, weights?: number[]): number {
  const exits = exitOrder(model);
  const w = weights ?? exits.map(() => 1);
  if (w.length !== exits.length || w.some((v) => !(v >= 0) || !Number.isFinite(v))) {
    throw new RsError('INVALID_ARGUMENT', `multiExitStep: ${exits.length} exits need ${exits.length} non-negative finite weights, got [${w.join(', ')}].`);
  }
  // Core's one training step: auxiliary losses of the layers that run are part of the loss, and
  // new batchNorm statistics are written only once the update succeeded.
  const { loss } = objectiveStep(model, optimizer, (pass) => {
    const outs = pass.run(x, { targets: exits });
    let total = tf.scalar(0);
    outs.forEach((o, i) => {
      if (w[i] > 0) total = tf.add(total, tf.mul(softmaxCrossEntropy(o, y), w[i]));
    });
    return total;
  });
  return loss;
}

/** What `earlyExitPredict` returns. Dispose `logits`. */
export interface EarlyExitResult {
  /** Logits of the exit each row left at, in input order. */
  logits: Tensor;
  /** Index (in `exitOrder`) of the exit each row took. */
  exitIndex: Int32Array;
}

/** Options of early-exit inference. */
export interface EarlyExitOptions {
  rule: ExitRule;
  /** One threshold per early exit (all outputs but the last), or one for all. */
  thresholds: number | number[];
}

/** Where `setExitPolicy` keeps the policy: `graph.meta`, so it is journaled and saved with the model. */
export const EXIT_POLICY_KEY = 'dynamic.exitPolicy';

/**
 * Stores a calibrated exit policy in the model (a journaled edit; saved and loaded with it), so
 * a deployed copy (another process, a browser) exits exactly as calibrated:
 * `earlyExitPredict(model, x)` then needs no options.
 *
 * @example
 * const { threshold } = calibrateThreshold(model, xCal, yCal, { rule: 'entropy', maxDrop: 0.005 });
 * setExitPolicy(model, { rule: 'entropy', thresholds: threshold });
 * await save(model, 'model.rsm');
 */
export function setExitPolicy(model: Model, policy: EarlyExitOptions, reason = 'exit policy'): void {
  const exits = exitOrder(model);
  if (exits.length < 2) throw new RsError('INVALID_ARGUMENT', 'The model has no early exit: add one with addExit before setting an exit policy.');
  if (policy === null || typeof policy !== 'object' || (policy.rule !== 'entropy' && policy.rule !== 'confidence')) {
    throw new RsError('INVALID_ARGUMENT', `An exit policy needs rule 'entropy' or 'confidence'; got ${JSON.stringify(policy?.rule)}.`);
  }
  const thresholds = thresholdList(model, policy, exits);
  model.edit((tx) => tx.setMeta(EXIT_POLICY_KEY, { rule: policy.rule, thresholds }), { technique: 'dynamic', reason });
}

/** The exit policy stored by `setExitPolicy`, or undefined. */
export function exitPolicy(model: Model): EarlyExitOptions | undefined {
  const stored = model.graph.meta?.[EXIT_POLICY_KEY] as EarlyExitOptions | undefined;
  return stored === undefined ? undefined : { rule: stored.rule, thresholds: Array.isArray(stored.thresholds) ? [...stored.thresholds] : stored.thresholds };
}

function resolvePolicy(model: Model, options: Partial<EarlyExitOptions> | undefined): EarlyExitOptions {
  if (options?.rule !== undefined && options.thresholds !== undefined) return options as EarlyExitOptions;
  const stored = exitPolicy(model);
  if (stored === undefined) {
    throw new RsError('INVALID_ARGUMENT', 'earlyExitPredict needs { rule, thresholds }, or a policy stored in the model with setExitPolicy.');
  }
  return { rule: options?.rule ?? stored.rule, thresholds: options?.thresholds ?? stored.thresholds };
}

function thresholdList(model: Model, options: EarlyExitOptions, exits: string[]): number[] {
  const early = exits.length - 1;
  const list = Array.isArray(options.thresholds) ? options.thresholds : exits.slice(0, -1).map(() => options.thresholds as number);
  if (list.length !== early) throw new RsError('INVALID_ARGUMENT', `The model has ${early} early exit(s); got ${list.length} thresholds.`);
  exits.slice(0, -1).forEach((e, i) => {
    const shape = model.validated.infos.get(e)?.shape ?? [];
    checkThreshold(options.rule, list[i], shape[shape.length - 1] as number);
  });
  return list;
}

/**
 * Batched inference with per-sample early exit: after each exit, the rows that pass the rule
 * leave the batch; the remaining rows are gathered and only they run the later layers.
 * Results come back in input order.
 *
 * @example
 * const { logits, exitIndex } = earlyExitPredict(model, x, { rule: 'entropy', thresholds: 0.05 });
 * const same = earlyExitPredict(model, x); // with a policy stored by setExitPolicy
 */
export function earlyExitPredict(model: Model, x: Tensor, policy?: Partial<EarlyExitOptions>): EarlyExitResult {
  const options = resolvePolicy(model, policy);
  checkFeed(model, x);
  const exits = exitOrder(model);
  const thresholds = thresholdList(model, options, exits);
  const n = x.shape[0];
  const exitIndex = new Int32Array(n).fill(exits.length - 1);
  const pieces: Tensor[] = [];
  const order: number[] = [];
  let rows = Array.from({ length: n }, (_, i) => i);
  let values = new Map<string, Tensor>();
  let current = x; // the input rows still in the batch
  const params = model.forwardParams(); // masked products are owned here; the rest are the model's
  const owned = new Set<Tensor>([...params.values()].filter((t) => !model.paramKeys().some((k) => model.param(k).value === t)));
  try {
    values.set(model.plan.inputs[0].id, x);
    for (let e = 0; e < exits.length && rows.length > 0; e++) {
      const id = exits[e];
      // Values computed for earlier exits are reused (the shared `values` cache): only the
      // layers between the previous exit and this one run, on the rows still in the batch.
      const logits = tf.tidy(() => {
        const result = execute(model.plan, [current], params, { training: false, rng: model.rng, targets: [id], values });
        for (const t of result.state.values()) t.dispose();
        for (const v of values.values()) tf.keep(v);
        return result.outputs[0];
      });
      values.delete(id); // the logits are owned here from now on
      if (e === exits.length - 1) {
        pieces.push(logits);
        order.push(...rows);
        break;
      }
      const scores = exitScores(logits, options.rule);
      const s = scores.dataSync();
      scores.dispose();
      const leave: number[] = [];
      const stay: number[] = [];
      for (let r = 0; r < rows.length; r++) (exitPasses(options.rule, s[r], thresholds[e]) ? leave : stay).push(r);
      if (leave.length > 0) {
        pieces.push(leave.length === rows.length ? tf.clone(logits) : tf.tidy(() => tf.gather(logits, leave)));
        for (const r of leave) {
          order.push(rows[r]);
          exitIndex[rows[r]] = e;
        }
      }
      logits.dispose();
      if (stay.length === rows.length) continue;
      // Keep only the values that later exits still read, restricted to the rows that stay.
      const later = ancestors(model.graph, exits.slice(e + 1));
      const needed = new Set<string>();
      for (const step of model.plan.steps) {
        if (!later.has(step.node.id) || values.has(step.node.id)) continue;
        for (const input of step.node.inputs) if (values.has(input)) needed.add(input);
      }
      const next = new Map<string, Tensor>();
      if (stay.length > 0) {
        const idx = tf.tensor1d(stay, 'int32');
        for (const [key, v] of values) {
          if (key !== model.plan.inputs[0].id && needed.has(key)) next.set(key, tf.gather(v, idx));
        }
        const rest = tf.gather(current, idx);
        next.set(model.plan.inputs[0].id, rest);
        idx.dispose();
        if (current !== x) current.dispose();
        current = rest;
      }
      for (const [key, v] of values) if (v !== x && v !== current && key !== model.plan.inputs[0].id) v.dispose();
      values = next;
      rows = stay.map((r) => rows[r]);
    }
  } finally {
    for (const v of new Set([...values.values(), current])) if (v !== x) v.dispose();
    for (const t of owned) t.dispose();
  }
  return { logits: restoreOrder(pieces, order), exitIndex };
}

function restoreOrder(pieces: Tensor[], order: number[]): Tensor {
  return tf.tidy(() => {
    const all = pieces.length === 1 ? pieces[0] : tf.concat(pieces, 0);
    const inverse = new Int32Array(order.length);
    order.forEach((row, i) => (inverse[row] = i));
    const out = tf.gather(all, tf.tensor1d(inverse, 'int32'));
    for (const p of pieces) p.dispose();
    return out;
  });
}

/** One point of the accuracy / exit-rate trade-off. */
export interface ThresholdPoint {
  threshold: number;
  accuracy: number;
  /** Fraction of rows leaving at each exit (execution order). */
  exitFractions: number[];
  earlyExitRate: number;
}

/** Result of `calibrateThreshold`. */
export interface Calibration {
  rule: ExitRule;
  threshold: number;
  accuracy: number;
  earlyExitRate: number;
  /** Accuracy of the final exit alone on the same data. */
  fullAccuracy: number;
  curve: ThresholdPoint[];
}

/** Options of `calibrateThreshold`. */
export interface CalibrateOptions {
  rule: ExitRule;
  /** Least accuracy allowed, absolute in [0, 1]; or use `maxDrop`. */
  targetAccuracy?: number;
  /** Largest accuracy drop below the final exit's accuracy allowed (e.g. 0.002). */
  maxDrop?: number;
  /** Candidate thresholds; default: 200 quantiles of the first exit's scores. */
  candidates?: number[];
}

/**
 * Picks the threshold (shared by all early exits) that lets the most rows exit early while the
 * accuracy on validation data stays >= the target, and returns the whole accuracy curve.
 * Uses full-network outputs of every exit computed once, so the sweep is cheap.
 *
 * @example
 * const cal = calibrateThreshold(model, xVal, yVal, { rule: 'entropy', maxDrop: 0.002 });
 */
export function calibrateThreshold(model: Model, x: Tensor, y: Int32Array, options: CalibrateOptions): Calibration {
  const exits = exitOrder(model);
  if (exits.length < 2) throw new RsError('INVALID_ARGUMENT', 'calibrateThreshold: the model has no early exit (addExit first).');
  if (options.targetAccuracy !== undefined && !(options.targetAccuracy >= 0 && options.targetAccuracy <= 1)) {
    throw new RsError('INVALID_ARGUMENT', `targetAccuracy must lie in [0, 1], got ${String(options.targetAccuracy)}.`);
  }
  if (options.maxDrop !== undefined && !(options.maxDrop >= 0 && options.maxDrop <= 1)) {
    throw new RsError('INVALID_ARGUMENT', `maxDrop must lie in [0, 1], got ${String(options.maxDrop)}.`);
  }
  checkThreshold(options.rule, 0, 2);
  checkFeed(model, x);
  if (y.length !== x.shape[0]) throw new RsError('DATA_MISMATCH', `calibrateThreshold: ${y.length} labels for ${x.shape[0]} rows.`, { labels: y.length, rows: x.shape[0] });
  const n = y.length;
  const outs = tf.tidy(() => {
    const result = execute(model.plan, [x], model.forwardParams(), { training: false, rng: model.rng, targets: exits });
    for (const t of result.state.values()) t.dispose();
    return result.outputs;
  });
  const preds = outs.map((o) => tf.tidy(() => tf.argMax(o, -1)).dataSync() as Int32Array);
  const scores = outs.map((o) => {
    const s = exitScores(o, options.rule);
    const a = s.dataSync().slice() as Float32Array;
    s.dispose();
    return a;
  });
  const classes = outs[0].shape[outs[0].shape.length - 1] as number;
  tf.dispose(outs);
  const correct = (p: Int32Array): number => p.reduce((acc, v, i) => acc + (v === y[i] ? 1 : 0), 0);
  const fullAccuracy = correct(preds[preds.length - 1]) / n;
  const target = options.targetAccuracy ?? fullAccuracy - (options.maxDrop ?? 0);
  let candidates = options.candidates;
  if (!candidates) {
    const sorted = [...scores[0]].sort((a, b) => a - b);
    candidates = [...new Set(Array.from({ length: 201 }, (_, i) => sorted[Math.min(n - 1, Math.floor((i / 200) * (n - 1)))]))];
    candidates = candidates.map((c) => Math.min(Math.max(c, 0), options.rule === 'entropy' ? Math.log(classes) : 1));
  }
  for (const c of candidates) checkThreshold(options.rule, c, classes);
  const curve: ThresholdPoint[] = candidates.map((threshold) => {
    const counts = exits.map(() => 0);
    let hits = 0;
    for (let i = 0; i < n; i++) {
      let e = 0;
      while (e < exits.length - 1 && !exitPasses(options.rule, scores[e][i], threshold)) e++;
      counts[e]++;
      if (preds[e][i] === y[i]) hits++;
    }
    const exitFractions = counts.map((c) => c / n);
    return { threshold, accuracy: hits / n, exitFractions, earlyExitRate: 1 - exitFractions[exitFractions.length - 1] };
  });
  const ok = curve.filter((p) => p.accuracy >= target - 1e-12);
  const best = ok.sort((a, b) => b.earlyExitRate - a.earlyExitRate || b.accuracy - a.accuracy)[0];
  const fallback = { threshold: options.rule === 'entropy' ? 0 : 1, accuracy: fullAccuracy, earlyExitRate: 0 };
  const pick = best ?? fallback;
  curve.sort((a, b) => a.threshold - b.threshold);
  return { rule: options.rule, threshold: pick.threshold, accuracy: pick.accuracy, earlyExitRate: pick.earlyExitRate, fullAccuracy, curve };
}
