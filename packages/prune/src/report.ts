import { RsError, type Model, type Tensor } from '@rs/core';

/** One layer (node with parameters) of a `PruneReport`. */
export interface LayerReport {
  node: string;
  op: string;
  params: number;
  nonzeroParams: number;
  sparsity: number;
  flops: number;
}

/** What `pruneReport` measures. */
export interface PruneReport {
  layers: LayerReport[];
  params: number;
  nonzeroParams: number;
  sparsity: number;
  flops: number;
  /** Median milliseconds of `model.predict(input)` (result read back) when an input was given. */
  latencyMs?: number;
  /** Rows of the input latency was measured on. */
  latencyBatch?: number;
  /** Prune steps in the journal. */
  steps: number;
}

/**
 * Per-layer sparsity, parameters and FLOPs (per sample, from `model.counts()`), and the
 * measured latency of `model.predict` on `input` (median of `repeats` after one warm-up).
 * Element masks do not make inference faster; only removal (`pruneUnits`, `materialize`) does.
 *
 * @example
 * const report = pruneReport(model, { input: tf.slice(testX, 0, 256) });
 * console.log(formatReport(report));
 */
export function pruneReport(model: Model, options: { input?: Tensor; repeats?: number } = {}): PruneReport {
  const repeats = options.repeats ?? 20;
  if (!(Number.isInteger(repeats) && repeats > 0)) throw new RsError('INVALID_ARGUMENT', `repeats must be a positive integer, got ${String(repeats)}.`);
  const counts = model.counts();
  const layers = counts.perNode.filter((n) => n.params > 0).map((n) => ({ ...n, sparsity: 1 - n.nonzeroParams / n.params }));
  let latencyMs: number | undefined;
  if (options.input) {
    const input = options.input;
    model.predict(input).dispose();
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const start = performance.now();
      const out = model.predict(input);
      out.dataSync();
      out.dispose();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    latencyMs = times[Math.floor(times.length / 2)];
  }
  const latencyBatch = options.input?.shape[0];
  return {
    layers,
    params: counts.params,
    nonzeroParams: counts.nonzeroParams,
    sparsity: 1 - counts.nonzeroParams / counts.params,
    flops: counts.flops,
    latencyMs,
    latencyBatch,
    steps: model.journal.filter((e) => e.technique === 'prune').length,
  };
}

/**
 * The report as an aligned text table.
 *
 * @example
 * console.log(formatReport(pruneReport(model)));
 */
export function formatReport(report: PruneReport): string {
  const rows = report.layers.map((l) => `${l.node.padEnd(16)} ${l.op.padEnd(20)} ${String(l.params).padStart(9)} ${String(l.nonzeroParams).padStart(9)} ${(100 * l.sparsity).toFixed(1).padStart(6)}% ${String(l.flops).padStart(10)}`);
  return [
    `${'node'.padEnd(16)} ${'op'.padEnd(20)} ${'params'.padStart(9)} ${'nonzero'.padStart(9)} ${'sparse'.padStart(7)} ${'FLOPs'.padStart(10)}`,
    ...rows,
    `total: ${report.params} params, ${report.nonzeroParams} non-zero (${(100 * report.sparsity).toFixed(1)}% sparse), ${report.flops} FLOPs/sample${report.latencyMs !== undefined ? `, ${report.latencyMs.toFixed(2)} ms per batch of ${report.latencyBatch}` : ''}, ${report.steps} prune steps`,
  ].join('\n');
}
