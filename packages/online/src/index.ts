/**
 * @rs/online: a served model that reorganizes itself under live traffic. A serving loop answers
 * requests from the current accepted version; a worker process prepares a policy's edit on a
 * copy (core's transactional edit, fine-tuning with core's `fit`, a canary check); accepted
 * versions are saved (core's safetensors format, with their journal) and swapped in atomically;
 * a regression seen after a swap rolls it back. See docs/online.md.
 */
import type { OpRegistry } from '@rs/core';
import type { ReportSection } from '@rs/core/extend';

export { OnlineServer } from './server';
export type { OnlineOptions, Prediction, ChangeOutcome, ChangeTiming } from './server';
export { listen } from './http';
export { VersionStore } from './store';
export type { OnlineEvent } from './store';
export { Telemetry, percentile, activationTargets } from './telemetry';
export type { TelemetrySnapshot } from './telemetry';
export { growOnNeed, pruneInactive, refresh, builtinPolicies, defaultPolicies, resolvePolicy } from './policy';
export type { Policy, Proposal, PolicySpec, CanaryResult } from './policy';
export { prepareChange } from './prepare';
export type { PrepareRequest, PrepareReply, FineTuneOptions, LabelledRows } from './prepare';
export { ChangeWorker } from './worker-pool';
export type { WorkerLaunch } from './worker-pool';

/** Report section: the edits the online policies made to this model (from its journal). */
export const onlineHistorySection: ReportSection<{ rows: { seq: number; policy: string; reason: string; params: number; flops: number }[]; reason?: string }> = {
  section: 'onlineHistory',
  title: 'Online reorganizations',
  collect: ({ model }) => {
    const rows = model.journal
      .filter((e) => e.technique.startsWith('online:'))
      .map((e) => ({ seq: e.seq, policy: e.technique.slice('online:'.length), reason: e.reason, params: e.params.after, flops: e.flops.after }));
    return rows.length > 0 ? { rows } : { rows, reason: 'no edit made by an online policy in this model' };
  },
};

/**
 * Registers what @rs/online provides to the layers above core: the `onlineHistory` report
 * section. It adds no op. Calling it twice is harmless.
 *
 * @example
 * const registry = register(createOpRegistry());
 */
export function register(registry: OpRegistry): OpRegistry {
  return registry.provide('report', onlineHistorySection.section, onlineHistorySection);
}
