import { RsError, splitParamKey, tf, type GraphDef, type JournalEntry, type Model, type OpRegistry, type Tensor } from '@rs/core';
import type { ReportSectionContext } from '@rs/core/extend';
import { reconstructHistory } from './reconstruct';
import type { GrowthSeries, QueueTimelineRow, ReportData, ReportOptions, SearchCurve, SparsityRow } from './types';

/** Runs `fn` in a tidy scope and reads its scalar result (never a TypedArray out of tidy). */
function readScalar(fn: () => Tensor): number {
  const t = tf.tidy(fn);
  const value = t.dataSync()[0];
  t.dispose();
  return value;
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

/** Sections that a registry provides (extension point `'report'`), measured on the model. */
function providedSections(model: Model, registry: OpRegistry, data: { x: Tensor; y?: ArrayLike<number> } | undefined, options: ReportOptions, batchSize: number): Map<string, unknown> {
  const context: ReportSectionContext = {
    model,
    data,
    batchSize,
    options: options as Readonly<Record<string, unknown>>,
    caller: 'collectReport',
    forBatches: (x, body) => forBatches(x, batchSize, body),
  };
  const out = new Map<string, unknown>();
  for (const [key, section] of registry.provided('report')) {
    if (!section || typeof section.collect !== 'function') throw new RsError('INVALID_ARGUMENT', `collectReport: the report section provided as '${key}' has no collect function.`);
    out.set(section.section ?? key, section.collect(context));
  }
  return out;
}

/** Why a section that the page lays out is empty when no registered package provides it. */
function notProvided(section: string): string {
  return `no registered package provides the '${section}' section: register the technique that does (its register(registry)) in the model's registry or pass options.registry`;
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

/** The timeline of a queue search from its records (`@rs/nas-queue`), or undefined when there are none. */
function queueTimeline(records: unknown): QueueTimelineRow[] | undefined {
  if (!Array.isArray(records) || records.length === 0) return undefined;
  const rows = records.map((r: unknown, i) => {
    const record = r as { trial?: unknown; worker?: unknown; startedAt?: unknown; finishedAt?: unknown; attempt?: unknown; fidelity?: unknown; error?: unknown } | null;
    if (!record || !finite(record.trial) || typeof record.worker !== 'string' || !finite(record.startedAt) || !finite(record.finishedAt) || record.finishedAt < record.startedAt) {
      throw new RsError('INVALID_ARGUMENT', `collectReport: search record ${i} needs trial, worker, startedAt and finishedAt >= startedAt (a record of @rs/nas-queue).`);
    }
    return { record, startedAt: record.startedAt, finishedAt: record.finishedAt };
  });
  const origin = Math.min(...rows.map((r) => r.startedAt));
  return rows.map(({ record, startedAt, finishedAt }) => ({
    trial: record.trial as number,
    worker: record.worker as string,
    start: (startedAt - origin) / 1000,
    end: (finishedAt - origin) / 1000,
    attempt: finite(record.attempt) ? record.attempt : 1,
    ...(finite(record.fidelity) ? { fidelity: record.fidelity } : {}),
    ...(typeof record.error === 'string' ? { failed: true } : {}),
  }));
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
      const trial = t as { validation?: unknown; cost?: unknown; test?: unknown; encoded?: unknown; error?: unknown } | null;
      // A failed trial (search({ failures: 'record' })) has no score: its cost counts, it draws no point.
      if (trial && typeof trial.error === 'string') {
        if (finite(trial.cost) && trial.cost >= 0) seconds += trial.cost;
        if (best) anytime.push({ evaluations: i + 1, seconds, bestValidation: best.validation, ...(best.test !== undefined ? { bestTest: best.test } : {}) });
        return;
      }
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
    const timeline = queueTimeline((run as { records?: unknown }).records);
    return { name, ...(typeof strategy === 'string' ? { strategy } : {}), ...(finite(seed) ? { seed } : {}), trials: rows, anytime, best, ...(timeline ? { timeline } : {}) };
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
  const registry = options.registry ?? model.registry;
  if (!registry || typeof registry.provided !== 'function') throw new RsError('INVALID_ARGUMENT', 'collectReport: options.registry must be an OpRegistry of @rs/core.');
  const graph = model.graph;
  const counts = model.counts();
  const infos = model.validated.infos;
  const widths = new Map<string, number | null>();
  for (const [id, info] of infos) widths.set(id, info.shape.length === 0 ? 1 : info.shape[info.shape.length - 1]);
  const history = reconstructHistory({ graph, widths, groups: model.groups() }, model.journal);
  const sections = providedSections(model, registry, data, options, batchSize);
  const expertLoad = (sections.get('expertLoad') as ReportData['expertLoad'] | undefined) ?? { layers: [], reason: notProvided('expertLoad') };
  const exits = (sections.get('exits') as ReportData['exits'] | undefined) ?? { reason: notProvided('exits') };
  const others = [...sections].filter(([key]) => key !== 'expertLoad' && key !== 'exits');
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
    expertLoad,
    exits,
    growth: growth(model.journal),
    search: searchCurves(options.search),
    ...(others.length > 0 ? { sections: Object.fromEntries(others) } : {}),
  };
}
