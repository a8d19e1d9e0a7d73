/**
 * @rs/moe: mixture-of-experts layers for @rs/core models. A `moe` op (fp32 router; noisy top-k,
 * Switch top-1 with capacity factor, GShard top-2, expert choice; sparse dispatch), balance and
 * z losses, routing metrics, and expert add / remove / merge / upcycling as journaled core edits.
 */
import type { OpRegistry } from '@rs/core';
import { moe } from './moe-op';

export { moe, resolveMoeAttrs } from './moe-op';
export type { MoeAttrs } from './moe-op';
export { route, expertCapacity } from './routing';
export type { Routing, RouteOptions, RouteResult } from './routing';
export { balanceLoss, routerZLoss, routerEntropy } from './losses';
export { moeMetrics } from './metrics';
export type { MoeStepMetrics } from './metrics';
export { addExpert, removeExpert, mergeExperts, busiestExpert, leastUsedExpert, findFfns, moeGraph, moeIdFor, upcycle } from './experts';
export type { AddExpertOptions, FfnChain, UpcycleOptions } from './experts';

/**
 * Registers the `moe` op into `registry` (no import registers anything by itself).
 *
 * @example
 * const registry = registerMoe(createOpRegistry());
 * const model = Model.create(moeGraph(charTransformer({ vocabSize: 80 }), { experts: 8 }), { registry });
 */
export function registerMoe(registry: OpRegistry): OpRegistry {
  return registry.register(moe);
}
