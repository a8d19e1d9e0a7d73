// Telemetry from live traffic: latency percentiles, labelled accuracy and error per class over a
// recent window, and per-unit activation rates measured on a sample of the served batches.
import type { Model } from '@rs/core';

/** What policies read (plain JSON: it crosses to the worker process). */
export interface TelemetrySnapshot {
  version: number;
  requests: number;
  labelled: number;
  /** Accuracy over the last `window` labelled requests (null before any). */
  accuracy: number | null;
  /**
   * That accuracy when the served version was swapped in; for a version that started with no
   * labelled history (the first), the accuracy over its first 50 labels. Null until known.
   */
  accuracyAtSwap: number | null;
  /** Labelled requests and errors per true class, over the same window. */
  perClass: { count: number[]; errors: number[] };
  /** Per editable unit group: the fraction of sampled requests on which each unit was active (> 0). */
  activationRates: Record<string, number[]>;
  /** Requests the activation rates were measured on (since the last swap). */
  activationSamples: number;
  latencyMs: { p50: number; p90: number; p99: number; count: number };
}

/** The node whose output measures a group's activity: its last ReLU (or its source). */
export function activationTargets(model: Model): { group: string; node: string }[] {
  const ops = new Map(model.graph.nodes.map((n) => [n.id, n.op]));
  return model
    .groups()
    .filter((g) => g.frozen === undefined)
    .flatMap((g) => {
      const relus = g.activations.filter((a) => ops.get(a.node) === 'relu');
      const node = relus.length > 0 ? relus[relus.length - 1]!.node : undefined;
      return node === undefined ? [] : [{ group: g.id, node }];
    });
}

/** The q-quantile (0..1) of unsorted values, nearest rank. */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export class Telemetry {
  private latencies: number[] = [];
  private outcomes: { label: number; correct: boolean }[] = [];
  private sums = new Map<string, Float64Array>();
  private samples = 0;
  private atSwap: number | null = null;
  /** Labels still to see before `atSwap` is taken (a version that started with no labels yet). */
  private atSwapAfter = 50;
  requests = 0;
  labelled = 0;

  constructor(
    private readonly window: number,
    private readonly classes: number,
  ) {}

  recordLatency(ms: number): void {
    this.latencies.push(ms);
    if (this.latencies.length > 4096) this.latencies.splice(0, this.latencies.length - 4096);
  }

  recordOutcome(label: number, predicted: number): void {
    this.labelled += 1;
    this.outcomes.push({ label, correct: label === predicted });
    if (this.outcomes.length > this.window) this.outcomes.shift();
    if (this.atSwap === null && --this.atSwapAfter <= 0) this.atSwap = this.accuracy();
  }

  /** Adds a batch's activity: `active[group]` holds, per unit, how many rows had it active. */
  recordActivity(active: Map<string, Float32Array | Int32Array>, rows: number): void {
    for (const [group, counts] of active) {
      let sum = this.sums.get(group);
      if (sum === undefined || sum.length !== counts.length) {
        sum = new Float64Array(counts.length);
        this.sums.set(group, sum);
      }
      for (let i = 0; i < counts.length; i += 1) sum[i]! += counts[i]!;
    }
    this.samples += rows;
  }

  accuracy(): number | null {
    if (this.outcomes.length === 0) return null;
    return this.outcomes.filter((o) => o.correct).length / this.outcomes.length;
  }

  /** A new version is served: activation rates restart (its units differ); the accuracy is noted. */
  swapped(): void {
    this.sums.clear();
    this.samples = 0;
    this.atSwap = this.accuracy();
    this.atSwapAfter = Math.min(50, this.window);
  }

  snapshot(version: number): TelemetrySnapshot {
    const count = new Array<number>(this.classes).fill(0);
    const errors = new Array<number>(this.classes).fill(0);
    for (const o of this.outcomes) {
      if (o.label < 0 || o.label >= this.classes) continue;
      count[o.label]! += 1;
      if (!o.correct) errors[o.label]! += 1;
    }
    const rates: Record<string, number[]> = {};
    for (const [group, sum] of this.sums) rates[group] = Array.from(sum, (s) => (this.samples > 0 ? s / this.samples : 0));
    return {
      version,
      requests: this.requests,
      labelled: this.labelled,
      accuracy: this.accuracy(),
      accuracyAtSwap: this.atSwap,
      perClass: { count, errors },
      activationRates: rates,
      activationSamples: this.samples,
      latencyMs: { p50: percentile(this.latencies, 0.5), p90: percentile(this.latencies, 0.9), p99: percentile(this.latencies, 0.99), count: this.latencies.length },
    };
  }
}
