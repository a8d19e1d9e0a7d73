/**
 * @rs/moe: mixture-of-experts layers for @rs/core models. A `moe` op (fp32 router; noisy top-k,
 * Switch top-1 with capacity factor, GShard top-2, expert choice; sparse dispatch), balance and
 * z losses, routing metrics, and expert add / remove / merge / upcycling as journaled core edits.
 */
import type { OpRegistry } from '@rs/core';
import { moe } from './moe-op';
import { moeOnnx } from './onnx';
import { expertLoadSection, moeTelemetry } from './report';

export { moe, resolveMoeAttrs } from './moe-op';
export type { MoeAttrs } from './moe-op';
export { route, expertCapacity, capacityFormula, hostArithmetic } from './routing';
export type { Routing, RouteOptions, RouteResult, CapacityArithmetic, CapacityFormula } from './routing';
export { moeOnnx, moeOnnxRule } from './onnx';
export { expertLoadSection, moeTelemetry } from './report';
export type { ExpertLoadLayer, ExpertLoadSection, MoeTelemetry } from './report';
export { balanceLoss, routerZLoss, routerEntropy } from './losses';
export { moeMetrics } from './metrics';
export type { MoeStepMetrics } from './metrics';
export { addExpert, removeExpert, mergeExperts, busiestExpert, leastUsedExpert, findFfns, moeGraph, moeIdFor, upcycle } from './experts';
export type { AddExpertOptions, FfnChain, UpcycleOptions } from './experts';

/**
 * Registers the `moe` op into `registry` and provides what other layers need from it: its ONNX
 * lowering (`'onnx'`), its `expertLoad` report section (`'report'`) and its metrics reader
 * (`'telemetry'`). No import registers anything by itself; calling it twice does nothing.
 *
 * @example
 * const registry = register(createOpRegistry());
 * const model = Model.create(moeGraph(charTransformer({ vocabSize: 80 }), { experts: 8 }), { registry });
 */
export function register(registry: OpRegistry): OpRegistry {
  return registry
    .register(moe)
    .provide('onnx', moe.name, moeOnnx)
    .provide('report', expertLoadSection.section, expertLoadSection)
    .provide('telemetry', moe.name, moeTelemetry);
}

/** @deprecated Use {@link register} (the name every technique package and plugin exports). */
export const registerMoe: (registry: OpRegistry) => OpRegistry = register;
