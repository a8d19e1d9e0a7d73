import { base, type ReportChart } from './specs';
import type { ReportData } from './types';

/**
 * A queue search's trials over time, one row per worker (and run): a bar from start to end per
 * trial, colored by its fidelity (ASHA rung: promotions are the bars of the higher rungs) or by
 * run; a retried trial (its worker died) has a black outline, a failed one is red.
 */
export function queueChart(data: ReportData): ReportChart | undefined {
  const runs = data.search.curves.filter((c) => c.timeline && c.timeline.length > 0);
  if (runs.length === 0) return undefined;
  const rows = runs.flatMap((c) =>
    (c.timeline ?? []).map((t) => ({
      ...t,
      run: c.name,
      lane: runs.length > 1 ? `${c.name}: ${t.worker}` : t.worker,
      status: t.failed ? 'failed' : t.attempt > 1 ? 'retried' : 'first attempt',
      rung: t.fidelity !== undefined ? String(t.fidelity) : c.name,
    })),
  );
  const byFidelity = rows.some((r) => r.fidelity !== undefined);
  return {
    id: 'queue',
    section: 'queue',
    spec: base({
      width: 720,
      height: { step: 18 },
      data: { values: rows },
      mark: { type: 'bar', height: 12, strokeWidth: 1.5 },
      encoding: {
        y: { field: 'lane', type: 'nominal', title: 'worker', sort: null },
        x: { field: 'start', type: 'quantitative', title: 'seconds since the first trial started' },
        x2: { field: 'end' },
        color: {
          condition: { test: "datum.status === 'failed'", value: '#d62728' },
          field: 'rung',
          type: 'ordinal',
          title: byFidelity ? 'fidelity (rung)' : 'run',
          legend: { orient: 'bottom' },
        },
        stroke: { condition: { test: "datum.status === 'retried'", value: '#000' }, value: null },
        tooltip: [{ field: 'run' }, { field: 'trial' }, { field: 'worker' }, { field: 'start' }, { field: 'end' }, { field: 'attempt' }, { field: 'fidelity' }, { field: 'status' }],
      },
    }),
  };
}
