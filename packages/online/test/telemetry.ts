import type { TelemetrySnapshot } from '../src/index';

/** A snapshot of a server that has seen no traffic yet (3 classes). */
export const emptyTelemetry: TelemetrySnapshot = {
  version: 0,
  requests: 0,
  labelled: 0,
  accuracy: null,
  accuracyAtSwap: null,
  perClass: { count: [0, 0, 0], errors: [0, 0, 0] },
  activationRates: {},
  activationSamples: 0,
  latencyMs: { p50: 0, p90: 0, p99: 0, count: 0 },
};
