import { nodeStatus, placeNodes, sameStructure, type NodeStatus } from './layout';
import type { GraphSnapshot, ReportData } from './types';

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Record<string, unknown>;

/** One chart of the page: the container id, the section it belongs to, and its Vega-Lite spec. */
export interface ReportChart {
  id: string;
  section: 'graph' | 'counts' | 'widths' | 'sparsity' | 'experts' | 'exits' | 'growth' | 'search' | 'queue';
  spec: VegaLiteSpec;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const STATUS_COLORS: Record<NodeStatus, string> = { unchanged: '#9aa0a6', resized: '#f58518', inserted: '#2ca02c', removed: '#d62728' };
const ROW = 30;

export function base(extra: VegaLiteSpec): VegaLiteSpec {
  return { $schema: SCHEMA, config: { view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11 }, legend: { labelFontSize: 11 } }, ...extra };
}

/**
 * A layered node-link drawing of one or more snapshots side by side (one column per panel):
 * y = depth from the inputs, x = slot in the layer, symbol area = units, color = change status.
 */
export function graphSpec(panels: { title: string; snapshot: GraphSnapshot; status: Map<string, NodeStatus> }[], title?: string): VegaLiteSpec {
  const placement = placeNodes(panels.map((p) => p.snapshot));
  const nodes: Record<string, unknown>[] = [];
  const edges: Record<string, unknown>[] = [];
  let maxDepth = 0;
  let maxSlot = 0;
  panels.forEach((panel, p) => {
    const ids = new Set(panel.snapshot.nodes.map((n) => n.id));
    for (const n of panel.snapshot.nodes) {
      const at = placement.get(n.id) as { depth: number; slot: number };
      maxDepth = Math.max(maxDepth, at.depth);
      maxSlot = Math.max(maxSlot, at.slot);
      const output = panel.snapshot.outputs.includes(n.id);
      nodes.push({
        kind: 'node',
        panel: panel.title,
        order: p,
        id: n.id,
        op: n.op,
        width: n.width,
        size: n.width ?? 0,
        depth: at.depth,
        slot: at.slot,
        status: panel.status.get(n.id) ?? 'unchanged',
        reconstruction: n.approximate ? 'approximate' : 'as recorded',
        label: `${n.id} · ${n.op} · ${n.width ?? '?'}${output ? ' (output)' : ''}`,
      });
      for (const i of n.inputs) {
        if (!ids.has(i)) continue;
        const from = placement.get(i) as { depth: number; slot: number };
        edges.push({ kind: 'edge', panel: panel.title, order: p, depth: from.depth, slot: from.slot, depth2: at.depth, slot2: at.slot });
      }
    }
  });
  const x = { field: 'slot', type: 'quantitative', axis: null, scale: { domain: [-0.15, maxSlot + 1] } };
  const y = { field: 'depth', type: 'quantitative', axis: null, scale: { domain: [-0.6, maxDepth + 0.6], reverse: true } };
  return base({
    ...(title ? { title: { text: title, anchor: 'start', fontSize: 12 } } : {}),
    // One data set for both layers, so that the column facet splits edges as well as nodes.
    data: { values: [...edges, ...nodes] },
    facet: { column: { field: 'panel', type: 'nominal', sort: { field: 'order' }, title: null, header: { labelFontSize: 12, labelFontWeight: 'bold' } } },
    spec: {
      width: Math.max(300, 240 * (maxSlot + 1)),
      height: ROW * (maxDepth + 1) + 10,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'edge'" }],
          mark: { type: 'rule', color: '#b0b4b8', strokeWidth: 1.2 },
          encoding: { x, y, x2: { field: 'slot2' }, y2: { field: 'depth2' } },
        },
        {
          transform: [{ filter: "datum.kind === 'node'" }],
          mark: { type: 'point', filled: true, opacity: 1, stroke: '#333', strokeWidth: 0.6 },
          encoding: {
            x,
            y,
            size: { field: 'size', type: 'quantitative', scale: { type: 'sqrt', range: [25, 420] }, legend: { title: 'units', orient: 'bottom' } },
            color: {
              field: 'status',
              type: 'nominal',
              scale: { domain: Object.keys(STATUS_COLORS), range: Object.values(STATUS_COLORS) },
              legend: { title: 'change', orient: 'bottom' },
            },
            shape: {
              field: 'reconstruction',
              type: 'nominal',
              scale: { domain: ['as recorded', 'approximate'], range: ['circle', 'diamond'] },
              legend: { title: 'node', orient: 'bottom' },
            },
            tooltip: [
              { field: 'id', title: 'node' },
              { field: 'op' },
              { field: 'width', title: 'units' },
              { field: 'status', title: 'change' },
              { field: 'reconstruction' },
            ],
          },
        },
        {
          transform: [{ filter: "datum.kind === 'node'" }],
          mark: { type: 'text', align: 'left', baseline: 'middle', dx: 11, fontSize: 10, color: '#222' },
          encoding: { x, y, text: { field: 'label' } },
        },
      ],
    },
    resolve: { scale: { size: 'shared' } },
  });
}

/** Charts of the graph before and after every journal entry that changed the structure. */
export function journalGraphCharts(data: ReportData): { seq: number; chart?: ReportChart; unchanged: boolean }[] {
  const { snapshots } = data.graphs;
  return data.journal.map((entry, k) => {
    const before = snapshots[k];
    const after = snapshots[k + 1];
    if (sameStructure(before, after)) return { seq: entry.seq, unchanged: true };
    const spec = graphSpec([
      { title: `before #${entry.seq}${before.exact ? '' : ' (reconstructed)'}`, snapshot: before, status: nodeStatus(before, after, 'before') },
      { title: `after #${entry.seq}${after.exact ? ' (current graph)' : ' (reconstructed)'}`, snapshot: after, status: nodeStatus(before, after, 'after') },
    ]);
    return { seq: entry.seq, unchanged: false, chart: { id: `graph-${entry.seq}`, section: 'graph', spec } };
  });
}

/** The current graph alone (for a model without journal entries). */
export function currentGraphChart(data: ReportData): ReportChart {
  const current = data.graphs.snapshots[data.graphs.snapshots.length - 1];
  const status = new Map(current.nodes.map((n) => [n.id, 'unchanged' as NodeStatus]));
  return { id: 'graph-current', section: 'graph', spec: graphSpec([{ title: 'current graph', snapshot: current, status }]) };
}

/** Units of every node after every journal step (a heatmap). */
export function widthsChart(data: ReportData): ReportChart {
  const { snapshots } = data.graphs;
  const placement = placeNodes(snapshots);
  const order = [...placement.keys()].sort((a, b) => {
    const pa = placement.get(a) as { depth: number; slot: number };
    const pb = placement.get(b) as { depth: number; slot: number };
    return pa.depth - pb.depth || pa.slot - pb.slot;
  });
  const values = snapshots.flatMap((s) =>
    s.nodes.map((n) => ({ step: s.step, node: n.id, op: n.op, units: n.width, label: n.width === null ? '?' : String(n.width), source: s.exact ? 'current graph' : n.approximate ? 'reconstructed, approximate' : 'reconstructed' })),
  );
  return {
    id: 'widths',
    section: 'widths',
    spec: base({
      data: { values },
      width: Math.max(160, 48 * snapshots.length),
      height: { step: 16 },
      encoding: {
        x: { field: 'step', type: 'ordinal', title: 'journal step (0 = before the first entry)', axis: { labelAngle: 0 } },
        y: { field: 'node', type: 'nominal', sort: order, title: null },
      },
      layer: [
        {
          mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
          encoding: {
            color: { field: 'units', type: 'quantitative', scale: { type: 'log', scheme: 'blues' }, legend: { title: 'units' } },
            tooltip: [{ field: 'node' }, { field: 'op' }, { field: 'step' }, { field: 'units' }, { field: 'source' }],
          },
        },
        { mark: { type: 'text', fontSize: 9 }, encoding: { text: { field: 'label' }, color: { value: '#111' } } },
      ],
    }),
  };
}

/** Parameters, non-zero parameters and FLOPs after every journal step. */
export function countsChart(data: ReportData): ReportChart | undefined {
  if (data.journal.length === 0) return undefined;
  const rows: Record<string, unknown>[] = [];
  const push = (step: number, seq: number | null, p: number, nz: number, flops: number): void => {
    rows.push({ step, seq, metric: 'parameters', value: p, chart: 'parameters' });
    rows.push({ step, seq, metric: 'non-zero parameters', value: nz, chart: 'parameters' });
    rows.push({ step, seq, metric: 'FLOPs (one sample)', value: flops, chart: 'flops' });
  };
  const first = data.journal[0];
  push(0, null, first.params.before, first.nonzeroParams.before, first.flops.before);
  data.journal.forEach((e, k) => push(k + 1, e.seq, e.params.after, e.nonzeroParams.after, e.flops.after));
  const panel = (chart: string, title: string, format: string): VegaLiteSpec => ({
    width: 340,
    height: 200,
    title: { text: title, fontSize: 12 },
    transform: [{ filter: `datum.chart === '${chart}'` }],
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'journal step', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: null, axis: { format }, scale: { zero: true } },
      color: { field: 'metric', type: 'nominal', title: null, legend: { orient: 'bottom' } },
      tooltip: [{ field: 'step' }, { field: 'seq', title: 'entry' }, { field: 'metric' }, { field: 'value', format: ',' }],
    },
  });
  return {
    id: 'counts',
    section: 'counts',
    spec: base({ data: { values: rows }, hconcat: [panel('parameters', 'parameters', '~s'), panel('flops', 'FLOPs per sample', '~s')], resolve: { scale: { color: 'independent' } } }),
  };
}

/** Element sparsity of every weight parameter. */
export function sparsityChart(data: ReportData): ReportChart | undefined {
  const { rows } = data.sparsity;
  if (rows.length === 0 || !rows.some((r) => r.masked)) return undefined;
  const values = rows.map((r) => ({ ...r, mask: r.masked ? 'masked' : 'no mask', label: r.masked ? `${(100 * r.sparsity).toFixed(1)}%  (${r.zeros.toLocaleString('en-US')} of ${r.size.toLocaleString('en-US')})` : `no mask (${r.size.toLocaleString('en-US')} weights)` }));
  return {
    id: 'sparsity',
    section: 'sparsity',
    spec: base({
      data: { values },
      width: 420,
      height: { step: 20 },
      encoding: {
        y: { field: 'param', type: 'nominal', sort: rows.map((r) => r.param), title: null },
        x: { field: 'sparsity', type: 'quantitative', title: 'fraction of weights masked to zero', scale: { domain: [0, 1] }, axis: { format: '%' } },
      },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            color: { field: 'mask', type: 'nominal', scale: { domain: ['masked', 'no mask'], range: ['#4c78a8', '#c7c7c7'] }, legend: { title: null, orient: 'bottom' } },
            tooltip: [{ field: 'param' }, { field: 'op' }, { field: 'size', format: ',' }, { field: 'zeros', format: ',' }, { field: 'sparsity', format: '.2%' }],
          },
        },
        { mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 }, encoding: { text: { field: 'label' }, x: { datum: 0 } } },
      ],
    }),
  };
}

/** Fraction of tokens per expert, one chart per moe layer. */
export function expertCharts(data: ReportData): ReportChart[] {
  return data.expertLoad.layers.map((layer, i) => ({
    id: `experts-${i}`,
    section: 'experts',
    spec: base({
      title: { text: `${layer.node}: ${layer.tokens.toLocaleString('en-US')} tokens, imbalance ${layer.imbalance.toFixed(2)}, dropped ${(100 * layer.dropped).toFixed(1)}%`, fontSize: 12, anchor: 'start' },
      width: Math.max(240, 36 * layer.experts),
      height: 180,
      layer: [
        {
          data: { values: layer.load.map((load, expert) => ({ expert, load, tokens: Math.round(load * layer.tokens) })) },
          mark: { type: 'bar', color: '#4c78a8' },
          encoding: {
            x: { field: 'expert', type: 'ordinal', title: 'expert', axis: { labelAngle: 0 } },
            y: { field: 'load', type: 'quantitative', title: 'fraction of tokens (first choice)', axis: { format: '%' } },
            tooltip: [{ field: 'expert' }, { field: 'load', format: '.2%' }, { field: 'tokens' }],
          },
        },
        {
          data: { values: [{ uniform: 1 / layer.experts, label: 'uniform' }] },
          mark: { type: 'rule', color: '#d62728', strokeDash: [4, 3] },
          encoding: { y: { field: 'uniform', type: 'quantitative' }, tooltip: [{ field: 'label' }, { field: 'uniform', format: '.2%' }] },
        },
      ],
    }),
  }));
}

/** Fraction of rows leaving at each exit. */
export function exitChart(data: ReportData): ReportChart | undefined {
  const rates = data.exits.rates;
  if (!rates) return undefined;
  const values = rates.exits.map((e) => ({
    ...e,
    threshold: e.index < rates.thresholds.length ? rates.thresholds[e.index] : null,
    label: `${(100 * e.fraction).toFixed(1)}%${e.accuracy !== undefined ? ` · acc ${(100 * e.accuracy).toFixed(1)}%` : ''}`,
  }));
  return {
    id: 'exits',
    section: 'exits',
    spec: base({
      data: { values },
      width: Math.max(240, 120 * values.length),
      height: 200,
      encoding: {
        x: { field: 'id', type: 'nominal', sort: values.map((v) => v.id), title: 'exit (execution order)', axis: { labelAngle: 0 } },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of rows leaving here', scale: { domain: [0, 1] }, axis: { format: '%' } },
      },
      layer: [
        {
          mark: { type: 'bar', color: '#72b7b2' },
          encoding: { tooltip: [{ field: 'id' }, { field: 'count' }, { field: 'fraction', format: '.2%' }, { field: 'accuracy', format: '.2%' }, { field: 'threshold' }] },
        },
        { mark: { type: 'text', baseline: 'bottom', dy: -3, fontSize: 11 }, encoding: { text: { field: 'label' } } },
      ],
    }),
  };
}

/** Group sizes over the journal steps, from grow entries. */
export function growthChart(data: ReportData): ReportChart | undefined {
  const { series } = data.growth;
  if (series.length === 0) return undefined;
  const values = series.flatMap((s) => s.points.map((p) => ({ group: s.group, step: p.step, size: p.size })));
  return {
    id: 'growth',
    section: 'growth',
    spec: base({
      data: { values },
      width: 420,
      height: 220,
      mark: { type: 'line', point: true, interpolate: 'step-after' },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'journal step', scale: { domain: [0, data.journal.length] }, axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'size', type: 'quantitative', title: 'units in group', scale: { zero: true } },
        color: { field: 'group', type: 'nominal', title: 'group', legend: { orient: 'right' } },
        tooltip: [{ field: 'group' }, { field: 'step' }, { field: 'size' }],
      },
    }),
  };
}

/** Anytime curves of every search run: best validation so far over evaluations and over time. */
export function searchChart(data: ReportData): ReportChart | undefined {
  const { curves } = data.search;
  if (curves.length === 0) return undefined;
  const trials = curves.flatMap((c) => c.trials.map((t) => ({ run: c.name, ...t })));
  const best = curves.flatMap((c) =>
    c.anytime.flatMap((p) => [
      { run: c.name, evaluations: p.evaluations, seconds: p.seconds, score: p.bestValidation, series: 'best validation so far' },
      ...(p.bestTest !== undefined ? [{ run: c.name, evaluations: p.evaluations, seconds: p.seconds, score: p.bestTest, series: 'test of that architecture' }] : []),
    ]),
  );
  const color = { field: 'run', type: 'nominal', title: 'run', legend: { orient: 'bottom' } };
  const dash = { field: 'series', type: 'nominal', title: null, scale: { domain: ['best validation so far', 'test of that architecture'], range: [[1, 0], [5, 3]] }, legend: { orient: 'bottom' } };
  const panel = (x: 'evaluations' | 'seconds', title: string): VegaLiteSpec => ({
    width: 360,
    height: 220,
    layer: [
      ...(x === 'evaluations'
        ? [
            {
              data: { values: trials },
              mark: { type: 'point', opacity: 0.45, size: 22 },
              encoding: {
                x: { field: 'evaluation', type: 'quantitative', title },
                y: { field: 'validation', type: 'quantitative', title: 'score', scale: { zero: false } },
                color,
                tooltip: [{ field: 'run' }, { field: 'evaluation' }, { field: 'validation' }, { field: 'test' }, { field: 'encoded', title: 'architecture' }],
              },
            },
          ]
        : []),
      {
        data: { values: best },
        mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
        encoding: {
          x: { field: x, type: 'quantitative', title },
          y: { field: 'score', type: 'quantitative', title: 'score', scale: { zero: false } },
          color,
          strokeDash: dash,
          tooltip: [{ field: 'run' }, { field: x }, { field: 'series' }, { field: 'score' }],
        },
      },
    ],
  });
  return {
    id: 'search',
    section: 'search',
    spec: base({ hconcat: [panel('evaluations', 'evaluations'), panel('seconds', 'evaluation seconds (simulated where known)')] }),
  };
}
