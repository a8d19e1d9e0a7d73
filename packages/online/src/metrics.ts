// The Prometheus text exposition format (version 0.0.4) of a server's state.
import type { TelemetrySnapshot } from './telemetry';

function line(name: string, help: string, type: 'counter' | 'gauge', samples: [string, number][]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples.map(([labels, v]) => `${name}${labels} ${Number.isFinite(v) ? v : 'NaN'}`)].join('\n');
}

export function prometheusText(t: TelemetrySnapshot, counters: Record<string, number>, model: { version: number; params: number; flops: number }): string {
  const blocks = [
    line('rs_online_requests_total', 'Requests answered.', 'counter', [['', t.requests]]),
    line('rs_online_labelled_total', 'Requests that received a label.', 'counter', [['', t.labelled]]),
    line('rs_online_version', 'Version being served.', 'gauge', [['', model.version]]),
    line('rs_online_params', 'Parameters of the served version.', 'gauge', [['', model.params]]),
    line('rs_online_flops_per_request', 'Forward FLOPs per request of the served version.', 'gauge', [['', model.flops]]),
    line('rs_online_accuracy', 'Accuracy over the recent labelled window.', 'gauge', [['', t.accuracy ?? Number.NaN]]),
    line('rs_online_latency_ms', 'Request latency over recent requests.', 'gauge', [
      ['{quantile="0.5"}', t.latencyMs.p50],
      ['{quantile="0.9"}', t.latencyMs.p90],
      ['{quantile="0.99"}', t.latencyMs.p99],
    ]),
    line('rs_online_class_errors', 'Labelled errors per true class over the recent window.', 'gauge', t.perClass.errors.map((e, c) => [`{class="${c}"}`, e])),
    ...Object.entries(counters).map(([k, v]) => line(`rs_online_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`, `Changes: ${k}.`, 'counter', [['', v]])),
  ];
  return `${blocks.join('\n')}\n`;
}
