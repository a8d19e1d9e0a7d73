import { RsError, disposeRun, tf, type OpRegistry, type Tensor } from '@rs/core';
import type { ReportSection, ReportSectionContext } from '@rs/core/extend';
import { EXIT_POLICY_KEY, checkThreshold, exitOrder, exitPasses, exitScores, type EarlyExitOptions, type ExitRule } from './early-exit';

export { exitPasses };

/** The `exits` report section: measured early-exit behaviour over held-out data. */
export interface ExitRatesSection {
  rates?: {
    rule: ExitRule;
    /** Thresholds of the early exits, in execution order. */
    thresholds: number[];
    /** Where the policy came from: the report's `exitPolicy` option or the policy stored in the model. */
    policySource: 'options' | 'model';
    rows: number;
    exits: { id: string; index: number; count: number; fraction: number; accuracy?: number }[];
    accuracy?: number;
    finalAccuracy?: number;
  };
  reason?: string;
}

const isRule = (rule: unknown): rule is ExitRule => rule === 'entropy' || rule === 'confidence';

function resolvePolicy(ctx: ReportSectionContext): { policy: EarlyExitOptions; source: 'options' | 'model' } | undefined {
  const given = ctx.options.exitPolicy as EarlyExitOptions | undefined;
  if (given !== undefined) {
    if (given === null || typeof given !== 'object' || !isRule(given.rule)) {
      throw new RsError('INVALID_ARGUMENT', `${ctx.caller}: exitPolicy.rule must be 'entropy' or 'confidence', got ${JSON.stringify((given as { rule?: unknown } | null)?.rule)}.`);
    }
    return { policy: given, source: 'options' };
  }
  const stored = ctx.model.graph.meta?.[EXIT_POLICY_KEY] as EarlyExitOptions | undefined;
  if (stored && isRule(stored.rule)) return { policy: stored, source: 'model' };
  return undefined;
}

function thresholdsFor(ctx: ReportSectionContext, policy: EarlyExitOptions, exits: string[], classes: number[]): number[] {
  const early = exits.length - 1;
  const list = Array.isArray(policy.thresholds) ? policy.thresholds : exits.slice(0, -1).map(() => policy.thresholds as number);
  if (list.length !== early) {
    throw new RsError('INVALID_ARGUMENT', `${ctx.caller}: the model has ${early} early exit(s) (${exits.slice(0, -1).join(', ')}); exitPolicy gives ${list.length} threshold(s).`);
  }
  list.forEach((t, i) => {
    try {
      checkThreshold(policy.rule, t, classes[i]);
    } catch (error) {
      throw new RsError('INVALID_ARGUMENT', `${ctx.caller}: exit '${exits[i]}': ${(error as Error).message}`, { exit: exits[i] });
    }
  });
  return list;
}

function readArray(t: Tensor): Float32Array {
  const out = Float32Array.from(t.dataSync() as Float32Array);
  t.dispose();
  return out;
}

function collectExitRates(ctx: ReportSectionContext): ExitRatesSection {
  const { model, data } = ctx;
  const graph = model.graph;
  const given = ctx.options.exitPolicy;
  if (graph.outputs.length < 2) {
    if (given !== undefined) throw new RsError('INVALID_ARGUMENT', `${ctx.caller}: exitPolicy was given, but the model has a single output (no early exit).`);
    return { reason: 'the model has a single output (no early exit)' };
  }
  const resolved = resolvePolicy(ctx);
  if (!resolved) return { reason: `the model has ${graph.outputs.length} outputs but no exit policy: pass exitPolicy (or store one with setExitPolicy of @rs/dynamic) to measure exit rates` };
  if (!data) return { reason: 'pass held-out data to measure exit rates' };
  const exits = exitOrder(model);
  const classes = exits.map((id) => {
    const shape = model.validated.infos.get(id)?.shape ?? [];
    const c = shape[shape.length - 1];
    if (shape.length !== 2 || typeof c !== 'number' || c < 2) {
      throw new RsError('INVALID_ARGUMENT', `${ctx.caller}: output '${id}' has shape [${shape.join(', ')}]; early exits need [rows, classes] logits.`);
    }
    return c;
  });
  const { rule } = resolved.policy;
  const thresholds = thresholdsFor(ctx, resolved.policy, exits, classes);
  const n = data.x.shape[0];
  const taken = new Int32Array(n);
  const predicted = new Int32Array(n);
  const finalPredicted = new Int32Array(n);
  ctx.forBatches(data.x, (batch, start) => {
    const run = model.run(batch);
    try {
      const rows = batch.shape[0];
      const decided = new Uint8Array(rows);
      exits.forEach((id, e) => {
        const logits = run.outputs[graph.outputs.indexOf(id)];
        const pred = readArray(tf.tidy(() => tf.argMax(logits, -1)));
        const scores = readArray(exitScores(logits, rule));
        const last = e === exits.length - 1;
        for (let r = 0; r < rows; r++) {
          if (last) finalPredicted[start + r] = pred[r];
          if (decided[r]) continue;
          if (last || exitPasses(rule, scores[r], thresholds[e])) {
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
  const y = data.y;
  const rates: NonNullable<ExitRatesSection['rates']> = {
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
        if (y && predicted[i] === y[i]) hits++;
      }
      return { id, index, count, fraction: count / n, ...(y && count > 0 ? { accuracy: hits / count } : {}) };
    }),
  };
  if (y) {
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

/**
 * The `exits` report section (provided at extension point `'report'` by {@link register}): how
 * many held-out rows leave at each exit under the report's `exitPolicy` option or the policy
 * stored with `setExitPolicy`, scored with {@link exitScores} and decided by {@link exitPasses}.
 */
export const exitRatesSection: ReportSection<ExitRatesSection> = {
  section: 'exits',
  title: 'Early exits',
  collect: collectExitRates,
};

/**
 * Provides what other layers need from @rs/dynamic (it adds no op): the `exits` report section.
 * Calling it twice does nothing.
 *
 * @example
 * const registry = register(createOpRegistry());
 * collectReport(model, { registry, data: { x, y } });
 */
export function register(registry: OpRegistry): OpRegistry {
  return registry.provide('report', exitRatesSection.section, exitRatesSection);
}
