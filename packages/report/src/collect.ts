import { RsError, ancestors, splitParamKey, tf, disposeRun, type GraphDef, type JournalEntry, type Model, type Tensor } from '@rs/core';
import { reconstructHistory } from './reconstruct';
import type {
  ExitRates,
  ExpertLoadLayer,
  GrowthSeries,
  ReportData,
  ReportExitPolicy,
  ReportOptions,
  SearchCurve,
  SparsityRow,
} from './types';

/** Where `@rs/dynamic` stores a calibrated exit policy (`setExitPolicy`). */
const EXIT_POLICY_META_KEY = 'dynamic.exitPolicy';

/** Runs `fn` in a tidy scope and reads its scalar result (never a TypedArray out of tidy). */
function readScalar(fn: () => Tensor): number {
  const t = tf.tidy(fn);
  const value = t.dataSync()[0];
  t.dispose();
  return value;
}

function readArray(t: Tensor): Float32Array {
  const out = Float32Array.from(t.dataSync() as Float32Array);
  t.dispose();
  return out;
}

function checkData(data: ReportOptions['data']): { x: Tensor; y?: ArrayLike<number> } | undefined {
  if (data === undefined) return undefined;
  const x = data?.x as Tensor | undefined;
  if (!x || !Array.isArray(x.shape) || typeof x.dataSync !== 'function') {
    throw new RsError('INVALID_ARGUMENT', 'collectReport: options.data.x must be a tensor of held-out inputs ([rows, ...features]).');
  }
  if (x.isDisposed) throw new RsError('INVALID_ARGUMENT', 'collectReport: options.data.x was disposed.');
  if (x.shape.length < 1 || x.shape[0] < 1) throw new RsError('INVALID_ARGUMENT', `collectReport: options.data.x needs at least one row, got shape [${x.shape.join(', ')}].`);
  const y = data.y;
  if (y !== undefined) {
    if (!(y instanceof Int32Array) && !Array.isArray(y)) throw new RsError('INVALID_ARGUMENT', 'collectReport: options.data.y must be an Int32Array or an array of class indices.');
    if (y.length !== x.shape[0]) {
      throw new RsError('INVALID_ARGUMENT', `collectReport: options.data.y has ${y.length} labels for ${x.shape[0]} rows of data.x.`);
    }
  }
  return { x, y };
}

/** Rows of `x` in batches: `body` gets each slice (disposed afterwards). */
function forBatches(x: Tensor, batchSize: number, body: (batch: Tensor, start: number) => void): void {
  const n = x.shape[0];
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const batch = size === n ? x : tf.slice(x, start, size);
    try {
      body(batch, start);
    } finally {
      if (batch !== x) batch.dispose();
    }
  }
}

function journalRows(journal: readonly JournalEntry[]): ReportData['journal'] {
  return journal.map((e) => ({
    seq: e.seq,
    time: e.time,
    technique: e.technique,
    reason: e.reason,
    changes: e.changes.map((c) => ({ ...c, ...(c.size ? { size: { ...c.size } } : {}) })),
    params: { ...e.params },
    nonzeroParams: { ...e.nonzeroParams },
    flops: { ...e.flops },
  }));
}

function sparsity(model: Model, graph: GraphDef): ReportData['sparsity'] {
  const ops = new Map(graph.nodes.map((n) => [n.id, n.op]));
  const rows: SparsityRow[] = [];
  for (const key of model.paramKeys()) {
    const entry = model.param(key);
    if (entry.role !== 'weight') continue;
    const [node] = splitParamKey(key);
    const size = entry.value.size;
    const mask = entry.mask;
    const zeros = mask ? size - readScalar(() => tf.sum(tf.cast(tf.notEqual(mask, 0), 'float32'))) : 0;
    rows.push({ param: key, node, op: ops.get(node) ?? '?', size, zeros, sparsity: size > 0 ? zeros / size : 0, masked: mask !== undefined });
  }
  const totalSize = rows.reduce((a, r) => a + r.size, 0);
  const totalZeros = rows.reduce((a, r) => a + r.zeros, 0);
  return rows.some((r) => r.masked) ? { rows, totalSize, totalZeros } : { rows, totalSize, totalZeros, reason: 'no parameter has a mask (no element pruning): every weight is kept' };
}

function expertLoad(model: Model, graph: GraphDef, data: { x: Tensor } | undefined, batchSize: number): ReportData['expertLoad'] {
  const moeNodes = graph.nodes.filter((n) => n.op === 'moe');
  if (moeNodes.length === 0) return { layers: [], reason: 'the model has no moe layer' };
  if (!data) return { layers: [], reason: `the model has ${moeNodes.length} moe layer(s); pass held-out data to measure their load` };
  const acc = new Map(moeNodes.map((n) => [n.id, { tokens: 0, firstChoice: [] as number[], dropped: 0, reported: true }]));
  forBatches(data.x, batchSize, (batch) => {
    const run = model.run(batch, { taps: { activations: moeNodes.map((n) => n.id) } });
    try {
      for (const node of moeNodes) {
        const a = acc.get(node.id) as { tokens: number; firstChoice: number[]; dropped: number; reported: boolean };
        const out = run.activations.get(node.id) as Tensor;
        // The op routes each row of its input flattened to [tokens, features].
        const tokens = out.size / out.shape[out.shape.length - 1];
        const loads: number[] = [];
        for (let e = 0; run.metrics.has(`${node.id}/load.${e}`); e++) loads.push((run.metrics.get(`${node.id}/load.${e}`) as Tensor).dataSync()[0]);
        if (loads.length === 0) {
          a.reported = false;
          continue;
        }
        loads.forEach((l, e) => (a.firstChoice[e] = (a.firstChoice[e] ?? 0) + Math.round(l * tokens)));
        const dropped = run.metrics.get(`${node.id}/dropped`);
        a.dropped += dropped ? dropped.dataSync()[0] * tokens : 0;
        a.tokens += tokens;
      }
    } finally {
      disposeRun(run);
    }
  });
  const layers: ExpertLoadLayer[] = [];
  const silent: string[] = [];
  for (const node of moeNodes) {
    const a = acc.get(node.id) as { tokens: number; firstChoice: number[]; dropped: number; reported: boolean };
    if (!a.reported || a.tokens === 0) {
      silent.push(node.id);
      continue;
    }
    const load = a.firstChoice.map((c) => c / a.tokens);
    const experts = load.length;
    layers.push({ node: node.id, experts, tokens: a.tokens, load, imbalance: Math.max(...load) * experts, dropped: a.dropped / a.tokens });
  }
  return silent.length > 0 ? { layers, reason: `moe node(s) ${silent.join(', ')} reported no per-expert load metrics (load.<i>)` } : { layers };
}

/** Graph outputs in execution order: the one with fewer ancestor nodes runs first (exit heads hang off the trunk). */
function outputsInExecutionOrder(graph: GraphDef): string[] {
  const cost = new Map(graph.outputs.map((o) => [o, ancestors(graph, [o]).size]));
  return [...graph.outputs].sort((a, b) => (cost.get(a) as number) - (cost.get(b) as number));
}

function resolvePolicy(model: Model, graph: GraphDef, given: ReportExitPolicy | undefined): { policy: ReportExitPolicy; source: 'options' | 'model' } | undefined {
  if (given !== undefined) {
    if (given === null || typeof given !== 'object' || (given.rule !== 'entropy' && given.rule !== 'confidence')) {
      throw new RsError('INVALID_ARGUMENT', `collectReport: exitPolicy.rule must be 'entropy' or 'confidence', got ${JSON.stringify((given as { rule?: unknown } | null)?.rule)}.`);
    }
    return { policy: given, source: 'options' };
  }
  const stored = graph.meta?.[EXIT_POLICY_META_KEY] as ReportExitPolicy | undefined;
  if (stored && (stored.rule === 'entropy' || stored.rule === 'confidence')) return { policy: stored, source: 'model' };
  return undefined;
}

function thresholdsFor(policy: ReportExitPolicy, exits: string[], classes: number[]): number[] {
  const early = exits.length - 1;
  const list = Array.isArray(policy.thresholds) ? policy.thresholds : exits.slice(0, -1).map(() => policy.thresholds as number);
  if (list.length !== early) {
    throw new RsError('INVALID_ARGUMENT', `collectReport: the model has ${early} early exit(s) (${exits.slice(0, -1).join(', ')}); exitPolicy gives ${list.length} threshold(s).`);
  }
  list.forEach((t, i) => {
    const max = policy.rule === 'entropy' ? Math.log(classes[i]) : 1;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > max) {
      throw new RsError('INVALID_ARGUMENT', `collectReport: threshold ${String(t)} of exit '${exits[i]}' is out of range for rule '${policy.rule}': it must lie in [0, ${max.toFixed(4)}].`);
    }
  });
  return list;
}

function exitRates(model: Model, graph: GraphDef, data: { x: Tensor; y?: ArrayLike<number> } | undefined, given: ReportExitPolicy | undefined, batchSize: number): ReportData['exits'] {
  if (graph.outputs.length < 2) {
    if (given !== undefined) throw new RsError('INVALID_ARGUMENT', 'collectReport: exitPolicy was given, but the model has a single output (no early exit).');
    return { reason: 'the model has a single output (no early exit)' };
  }
  const resolved = resolvePolicy(model, graph, given);
  if (!resolved) return { reason: `the model has ${graph.outputs.length} outputs but no exit policy: pass exitPolicy (or store one with setExitPolicy of @rs/dynamic) to measure exit rates` };
  if (!data) return { reason: 'pass held-out data to measure exit rates' };
  const exits = outputsInExecutionOrder(graph);
  const position = exits.map((id) => graph.outputs.indexOf(id));
  const classes = exits.map((id) => {
    const shape = model.validated.infos.get(id)?.shape ?? [];
    const c = shape[shape.length - 1];
    if (shape.length !== 2 || typeof c !== 'number' || c < 2) {
      throw new RsError('INVALID_ARGUMENT', `collectReport: output '${id}' has shape [${shape.join(', ')}]; early exits need [rows, classes] logits.`);
    }
    return c;
  });
  const { rule } = resolved.policy;
  const thresholds = thresholdsFor(resolved.policy, exits, classes);
  const n = data.x.shape[0];
  const taken = new Int32Array(n);
  const predicted = new Int32Array(n);
  const finalPredicted = new Int32Array(n);
  forBatches(data.x, batchSize, (batch, start) => {
    const run = model.run(batch);
    try {
      const rows = batch.shape[0];
      const decided = new Uint8Array(rows);
      exits.forEach((_, e) => {
        const logits = run.outputs[position[e]];
        const pred = readArray(tf.tidy(() => tf.argMax(logits, -1)));
        // Entropy (nats) or max probability, per row, as earlyExitPredict of @rs/dynamic scores.
        const scores = readArray(
          tf.tidy(() => {
            const logp = tf.logSoftmax(logits);
            return rule === 'confidence' ? tf.exp(tf.max(logp, -1)) : tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
          }),
        );
        const last = e === exits.length - 1;
        for (let r = 0; r < rows; r++) {
          if (last) finalPredicted[start + r] = pred[r];
          if (decided[r]) continue;
          if (last || (rule === 'entropy' ? scores[r] <= thresholds[e] : scores[r] >= thresholds[e])) {
            decided[r] = 1;
            taken[start + r] = e;
            predicted[start + r] = pred[r];
          }
        }
      });
    } finally {
      disposeRun(run);
    }
  });
  const rates: ExitRates = {
    rule,
    thresholds,
    policySource: resolved.source,
    rows: n,
    exits: exits.map((id, index) => {
      let count = 0;
      let hits = 0;
      for (let i = 0; i < n; i++) {
        if (taken[i] !== index) continue;
        count++;
        if (data.y && predicted[i] === data.y[i]) hits++;
      }
      return { id, index, count, fraction: count / n, ...(data.y && count > 0 ? { accuracy: hits / count } : {}) };
    }),
  };
  if (data.y) {
    const y = data.y;
    let hits = 0;
    let finalHits = 0;
    for (let i = 0; i < n; i++) {
      if (predicted[i] === y[i]) hits++;
      if (finalPredicted[i] === y[i]) finalHits++;
    }
    rates.accuracy = hits / n;
    rates.finalAccuracy = finalHits / n;
  }
  return { rates };
}

function growth(journal: readonly JournalEntry[]): ReportData['growth'] {
  const series = new Map<string, GrowthSeries>();
  const insertedNodes: ReportData['growth']['insertedNodes'] = [];
  journal.forEach((entry, k) => {
    if (entry.technique !== 'grow') return;
    for (const change of entry.changes) {
      if (change.kind === 'insertNode') insertedNodes.push({ seq: entry.seq, node: change.target, summary: change.summary });
      if (!change.size || (change.kind !== 'insertUnits' && change.kind !== 'removeUnits')) continue;
      const s = series.get(change.target) ?? { group: change.target, points: [] };
      // Step k is the graph after k entries: this entry takes the group from step k to k + 1.
      const previous = s.points[s.points.length - 1];
      if (!previous || previous.step < k) s.points.push({ step: k, size: change.size.before });
      const last = s.points[s.points.length - 1];
      // Several changes to one group in one entry: keep the entry's final size.
      if (last.step === k + 1) last.size = change.size.after;
      else s.points.push({ step: k + 1, size: change.size.after });
      series.set(change.target, s);
    }
  });
  const list = [...series.values()];
  if (list.length === 0 && insertedNodes.length === 0) return { series: [], insertedNodes: [], reason: "no journal entry of technique 'grow'" };
  return { series: list, insertedNodes };
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function searchCurves(search: unknown): ReportData['search'] {
  if (search === undefined || search === null) return { curves: [], reason: 'no search result given' };
  const runs = Array.isArray(search) ? search : [search];
  if (runs.length === 0) return { curves: [], reason: 'no search result given' };
  const curves: SearchCurve[] = runs.map((run, r) => {
    const trials = (run as { trials?: unknown } | null)?.trials;
    if (run === null || typeof run !== 'object' || !Array.isArray(trials)) {
      throw new RsError('INVALID_ARGUMENT', `collectReport: search${Array.isArray(search) ? `[${r}]` : ''} must be a search result or checkpoint of @rs/nas (an object with a trials array).`);
    }
    const { strategy, seed } = run as { strategy?: unknown; seed?: unknown };
    const rows: SearchCurve['trials'] = [];
    const anytime: SearchCurve['anytime'] = [];
    let seconds = 0;
    let best: SearchCurve['best'] | undefined;
    trials.forEach((t: unknown, i) => {
      const trial = t as { validation?: unknown; cost?: unknown; test?: unknown; encoded?: unknown } | null;
      if (!trial || !finite(trial.validation) || !finite(trial.cost) || trial.cost < 0) {
        throw new RsError('INVALID_ARGUMENT', `collectReport: search trial ${i} needs a finite validation score and a cost >= 0 (seconds).`);
      }
      seconds += trial.cost;
      const row: SearchCurve['trials'][number] = { evaluation: i + 1, seconds, validation: trial.validation };
      if (finite(trial.test)) row.test = trial.test;
      if (typeof trial.encoded === 'string') row.encoded = trial.encoded;
      rows.push(row);
      if (!best || row.validation > best.validation) best = { evaluation: row.evaluation, validation: row.validation, ...(row.test !== undefined ? { test: row.test } : {}), ...(row.encoded ? { encoded: row.encoded } : {}) };
      anytime.push({ evaluations: i + 1, seconds, bestValidation: best.validation, ...(best.test !== undefined ? { bestTest: best.test } : {}) });
    });
    if (!best) throw new RsError('INVALID_ARGUMENT', `collectReport: search${Array.isArray(search) ? `[${r}]` : ''} has no trials.`);
    const name = `${typeof strategy === 'string' ? strategy : 'search'}${finite(seed) ? ` (seed ${seed})` : ''}`;
    return { name, ...(typeof strategy === 'string' ? { strategy } : {}), ...(finite(seed) ? { seed } : {}), trials: rows, anytime, best };
  });
  // Names label the curves: make them unique.
  const seen = new Map<string, number>();
  for (const c of curves) {
    const k = (seen.get(c.name) ?? 0) + 1;
    seen.set(c.name, k);
    if (k > 1) c.name = `${c.name} #${k}`;
  }
  return { curves };
}

/**
 * Collects everything the report shows from a model (its journal, masks, graph) and, where
 * given, held-out data and a search result. Plain JSON: print it, save it, or pass it to
 * `renderReport`. Measuring runs the model in inference mode and leaves no tensor behind.
 *
 * @example
 * const data = collectReport(model, { data: { x: xVal, y: yVal }, exitPolicy: { rule: 'entropy', thresholds: 0.3 } });
 * data.sparsity.rows[0].sparsity; data.exits.rates?.exits[0].fraction;
 */
export function collectReport(model: Model, options: ReportOptions = {}): ReportData {
  if (options === null || typeof options !== 'object') throw new RsError('INVALID_ARGUMENT', 'collectReport: options must be an object.');
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RsError('INVALID_ARGUMENT', `collectReport: batchSize must be a positive integer, got ${String(options.batchSize)}.`);
  const data = checkData(options.data);
  const graph = model.graph;
  const counts = model.counts();
  const infos = model.validated.infos;
  const widths = new Map<string, number | null>();
  for (const [id, info] of infos) widths.set(id, info.shape.length === 0 ? 1 : info.shape[info.shape.length - 1]);
  const history = reconstructHistory({ graph, widths, groups: model.groups() }, model.journal);
  return {
    version: 1,
    title: options.title ?? 'Model report',
    generated: new Date().toISOString(),
    model: {
      inputs: graph.inputs.map((i) => ({ id: i.id, shape: [...i.shape] })),
      outputs: [...graph.outputs],
      nodes: graph.nodes.length,
      params: counts.params,
      nonzeroParams: counts.nonzeroParams,
      flops: counts.flops,
    },
    journal: journalRows(model.journal),
    graphs: history,
    sparsity: sparsity(model, graph),
    expertLoad: expertLoad(model, graph, data, batchSize),
    exits: exitRates(model, graph, data, options.exitPolicy, batchSize),
    growth: growth(model.journal),
    search: searchCurves(options.search),
  };
}
