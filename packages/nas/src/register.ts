import type { OpRegistry } from '@rs/core';
import { mixed, zero } from './ops';
import { nasMixedOnnx, nasZeroOnnx } from './onnx';

/**
 * Registers `nas.mixed` and `nas.zero` into `registry` and provides their ONNX lowerings
 * (extension point `'onnx'`). Nothing registers on import; calling it twice does nothing.
 *
 * @example
 * const registry = register(createOpRegistry());
 * const model = Model.create(supernet, { registry });
 */
export function register(registry: OpRegistry): OpRegistry {
  return registry.register(mixed).register(zero).provide('onnx', mixed.name, nasMixedOnnx).provide('onnx', zero.name, nasZeroOnnx);
}

/** @deprecated Use {@link register} (the name every technique package and plugin exports). */
export const registerNasOps: (registry: OpRegistry) => OpRegistry = register;
