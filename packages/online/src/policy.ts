// Policies: small plugins that read the live telemetry and propose one journaled edit. They run
// in the worker process, on a copy of the served model (src/prepare.ts).
import { RsError, type Model, type Transaction } from '@rs/core';
import type { TelemetrySnapshot } from './telemetry';

/** What a policy proposes: one edit (or none: fine-tune only), with why. */
export interface Proposal {
  /** A human reason, recorded in the model's journal and in the event journal. */
  reason: string;
  details?: Record<string, unknown>;
  /**
   * The structural change, run as one `model.edit` on the copy (synchronous, as core requires).
   * Absent: the change is fine-tuning on the replay buffer only.
   */
  edit?: (tx: Transaction, model: Model) => void;
}

/** Canary accuracies of the served version and of the prepared candidate. */
export interface CanaryResult {
  before: number;
  after: number;
  /** Canary examples evaluated. */
  count: number;
}

/**
 * A policy. `propose` sees the copy and the telemetry and returns a proposal or null (nothing
 * to do); `accept` decides from the canary whether the prepared candidate may be swapped in
 * (default: `after >= before - 0.01`).
 *
 * @example
 * export const widenFirst: Policy = {
 *   name: 'widenFirst',
 *   propose: (model, { telemetry }) =>
 *     telemetry.labelled < 100 ? null : { reason: 'widen fc1 by 8', edit: (tx) => tx.insertUnits('fc1', 8) },
 * };
 */
export interface Policy {
  name: string;
  propose(model: Model, context: { telemetry: TelemetrySnapshot; options: Record<string, unknown> }): Proposal | null;
  accept?(result: CanaryResult): boolean;
}

/** How a server names a policy: a built-in's name, or an export of a module (third parties). */
export type PolicySpec = string | { module: string; export?: string; options?: Record<string, unknown> } | { name: string; options?: Record<string, unknown> };

/** The numeric options of a policy, each given or its default; anything else is INVALID_ARGUMENT. */
function numbers<K extends string>(options: Record<string, unknown>, defaults: Record<K, number>): Record<K, number> {
  const out = { ...defaults };
  for (const key of Object.keys(defaults) as K[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new RsError('INVALID_ARGUMENT', `Policy option '${key}' must be a finite number, got ${JSON.stringify(value)}.`);
    out[key] = value;
  }
  return out;
}

/** The groups a policy may edit: not frozen (so not the output), with a measured activation rate. */
function editableGroups(model: Model, telemetry: TelemetrySnapshot): { id: string; size: number; rates: number[] }[] {
  return model
    .groups()
    .filter((g) => g.frozen === undefined)
    .flatMap((g) => {
      const rates = telemetry.activationRates[g.id];
      return rates !== undefined && rates.length === g.size ? [{ id: g.id, size: g.size, rates }] : [];
    });
}

/**
 * Growth on need: when the labelled accuracy fell by more than `errorRise` (default 0.05) since
 * the last swap, insert `units` (default 32) fresh units into the editable group with the fewest
 * inactive units (function-preserving: new outgoing weights are zero), up to `maxUnits` per group.
 */
export const growOnNeed: Policy = {
  name: 'growOnNeed',
  propose(model, { telemetry, options }) {
    const { errorRise: rise, units, maxUnits } = numbers(options, { errorRise: 0.05, units: 32, maxUnits: 1024 });
    if (telemetry.accuracy === null || telemetry.accuracyAtSwap === null) return null;
    const drop = telemetry.accuracyAtSwap - telemetry.accuracy;
    if (drop <= rise) return null;
    const groups = editableGroups(model, telemetry).filter((g) => g.size + units <= maxUnits);
    if (groups.length === 0) return null;
    const inactive = (g: { rates: number[] }) => g.rates.filter((r) => r < 0.01).length / g.rates.length;
    const target = groups.reduce((best, g) => (inactive(g) < inactive(best) ? g : best));
    return {
      reason: `labelled accuracy fell from ${telemetry.accuracyAtSwap.toFixed(3)} to ${telemetry.accuracy.toFixed(3)} since the last swap: grow ${target.id} by ${units} units`,
      details: { group: target.id, units, drop },
      edit: (tx) => {
        tx.insertUnits(target.id, units, { incoming: 'init', outgoing: 'zeros' });
      },
    };
  },
};

/**
 * Pruning of units that stayed inactive: units whose measured activation rate over live traffic
 * is below `threshold` (default 0.005) are removed, at most `maxFraction` (default 0.25) of a
 * group and never below `minUnits` (default 16), in one edit over every group.
 */
export const pruneInactive: Policy = {
  name: 'pruneInactive',
  propose(model, { telemetry, options }) {
    const { threshold, maxFraction, minUnits, minSamples } = numbers(options, { threshold: 0.005, maxFraction: 0.25, minUnits: 16, minSamples: 256 });
    if (telemetry.activationSamples < minSamples) return null;
    const plan: { id: string; indices: number[] }[] = [];
    for (const g of editableGroups(model, telemetry)) {
      const order = g.rates.map((r, i) => [r, i] as const).filter(([r]) => r < threshold).sort((a, b) => a[0] - b[0]);
      const limit = Math.min(Math.floor(g.size * maxFraction), g.size - minUnits);
      const indices = order.slice(0, Math.max(0, limit)).map(([, i]) => i).sort((a, b) => a - b);
      if (indices.length > 0) plan.push({ id: g.id, indices });
    }
    if (plan.length === 0) return null;
    return {
      reason: `remove ${plan.map((p) => `${p.indices.length} unit(s) of ${p.id}`).join(', ')} active on under ${threshold} of ${telemetry.activationSamples} recent requests`,
      details: { threshold, groups: Object.fromEntries(plan.map((p) => [p.id, p.indices.length])) },
      edit: (tx) => {
        for (const p of plan) tx.removeUnits(p.id, p.indices);
      },
    };
  },
};

/** No structural change: fine-tune the served model on the replay buffer. */
export const refresh: Policy = {
  name: 'refresh',
  propose: () => ({ reason: 'fine-tune on the replay buffer of recent labelled traffic' }),
};

/** The built-in policies, by name. */
export const builtinPolicies: Readonly<Record<string, Policy>> = { growOnNeed, pruneInactive, refresh };

/** The default policies of a server, in the order they are asked. */
export const defaultPolicies: readonly PolicySpec[] = ['growOnNeed', 'pruneInactive', 'refresh'];

function isPolicy(value: unknown): value is Policy {
  return typeof value === 'object' && value !== null && typeof (value as Policy).name === 'string' && typeof (value as Policy).propose === 'function';
}

/** Resolves a spec to a policy and its options (in the worker; imports a module for third-party specs). */
export async function resolvePolicy(spec: PolicySpec): Promise<{ policy: Policy; options: Record<string, unknown> }> {
  if (typeof spec === 'string' || 'name' in spec) {
    const name = typeof spec === 'string' ? spec : spec.name;
    const policy = builtinPolicies[name];
    if (policy === undefined) throw new RsError('INVALID_ARGUMENT', `Unknown policy '${name}'; the built-ins are ${Object.keys(builtinPolicies).join(', ')}, or give { module, export } for your own.`);
    return { policy, options: typeof spec === 'string' ? {} : (spec.options ?? {}) };
  }
  const loaded = (await import(spec.module)) as Record<string, unknown>;
  const value = loaded[spec.export ?? 'default'];
  if (!isPolicy(value)) throw new RsError('INVALID_ARGUMENT', `${spec.module} has no policy export '${spec.export ?? 'default'}' (an object with name and propose).`);
  return { policy: value, options: spec.options ?? {} };
}

/** Checks a spec's shape in the serving process, before any change is prepared. */
export function checkPolicySpec(spec: unknown): PolicySpec {
  if (typeof spec === 'string') {
    if (builtinPolicies[spec] === undefined) throw new RsError('INVALID_ARGUMENT', `Unknown policy '${spec}'; the built-ins are ${Object.keys(builtinPolicies).join(', ')}.`);
    return spec;
  }
  if (typeof spec === 'object' && spec !== null && (typeof (spec as { module?: unknown }).module === 'string' || typeof (spec as { name?: unknown }).name === 'string')) return spec as PolicySpec;
  throw new RsError('INVALID_ARGUMENT', `A policy is a built-in's name or { module, export, options }, got ${JSON.stringify(spec)}.`);
}
