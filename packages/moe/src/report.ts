import { disposeRun, type NodeDef, type Tensor } from '@rs/core';
import type { ExpertLoadLayer, ExpertLoadSection, ReportSection, ReportSectionContext, RunMetrics, TelemetryReader } from '@rs/core/extend';

/** What one `moe` node reported in one run (metrics `load.<i>` and `dropped`). */
export interface MoeTelemetry extends Record<string, number | number[]> {
  /** Fraction of tokens whose first choice is each expert. */
  load: number[];
  /** Fraction of requested assignments dropped by the capacity limit. */
  dropped: number;
}

/**
 * Reads a `moe` node's routing metrics of one run (provided at extension point `'telemetry'`).
 * `undefined` when the run reported no per-expert load for the node.
 */
export const moeTelemetry: TelemetryReader<MoeTelemetry> = {
  op: 'moe',
  read(metrics: RunMetrics, node: NodeDef): MoeTelemetry | undefined {
    const load: number[] = [];
    for (let e = 0; metrics.has(`${node.id}/load.${e}`); e++) load.push((metrics.get(`${node.id}/load.${e}`) as Tensor).dataSync()[0]);
    if (load.length === 0) return undefined;
    const dropped = metrics.get(`${node.id}/dropped`);
    return { load, dropped: dropped ? dropped.dataSync()[0] : 0 };
  },
};

export type { ExpertLoadLayer, ExpertLoadSection };

function collectExpertLoad(ctx: ReportSectionContext): ExpertLoadSection {
  const { model, data } = ctx;
  const moeNodes = model.graph.nodes.filter((n) => n.op === moeTelemetry.op);
  if (moeNodes.length === 0) return { layers: [], reason: 'the model has no moe layer' };
  if (!data) return { layers: [], reason: `the model has ${moeNodes.length} moe layer(s); pass held-out data to measure their load` };
  const acc = new Map(moeNodes.map((n) => [n.id, { tokens: 0, firstChoice: [] as number[], dropped: 0, reported: true }]));
  ctx.forBatches(data.x, (batch) => {
    const run = model.run(batch, { taps: { activations: moeNodes.map((n) => n.id) } });
    try {
      for (const node of moeNodes) {
        const a = acc.get(node.id) as { tokens: number; firstChoice: number[]; dropped: number; reported: boolean };
        const out = run.activations.get(node.id) as Tensor;
        // The op routes each row of its input flattened to [tokens, features].
        const tokens = out.size / out.shape[out.shape.length - 1];
        const read = moeTelemetry.read(run.metrics, node);
        if (!read) {
          a.reported = false;
          continue;
        }
        read.load.forEach((l, e) => (a.firstChoice[e] = (a.firstChoice[e] ?? 0) + Math.round(l * tokens)));
        a.dropped += read.dropped * tokens;
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

/** The `expertLoad` report section (provided at extension point `'report'`): per-layer expert load on held-out data. */
export const expertLoadSection: ReportSection<ExpertLoadSection> = {
  section: 'expertLoad',
  title: 'Expert load',
  collect: collectExpertLoad,
};
