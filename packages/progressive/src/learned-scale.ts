import { tf, createOpRegistry, type OpRegistry, type OpSchema } from '@rs/core';
import { elementwiseFlops, type OnnxRule } from '@rs/core/extend';

/** Attributes of {@link learnedScale}. */
export interface LearnedScaleAttrs {
  /** Initial value of the scalar. Default 1. */
  init?: number;
}

/**
 * `y = alpha * x` with one learned scalar `alpha` (parameter `alpha`, shape [1]). The first
 * stage of Rusu et al.'s non-linear lateral adapter: it lets the new column rescale each
 * earlier column's activations, whose magnitudes differ. Units pass through unchanged.
 *
 * @example
 * { id: 'col1/fc2.lat0.scale', op: 'learnedScale', inputs: ['col0/relu1'], attrs: { init: 1 } }
 */
export const learnedScale: OpSchema<LearnedScaleAttrs> = {
  name: 'learnedScale',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (attrs.init !== undefined && (typeof attrs.init !== 'number' || !Number.isFinite(attrs.init))) {
      ctx.failAttrs(`init must be a finite number, got ${String(attrs.init)}`);
    }
    if (x.dtype !== 'float32') ctx.fail(`expects float32 input, got ${x.dtype}`);
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(attrs) {
    return { alpha: { shape: [1], init: { kind: 'constant', value: attrs.init ?? 1 } } };
  },
  forward([x], params) {
    return tf.mul(x, params.alpha);
  },
  units: 'elementwise',
  flops: elementwiseFlops(1),
};

/**
 * The ONNX lowering of `learnedScale` (provided at extension point `'onnx'` by {@link register}):
 * `y = alpha * x` with the learned `alpha` of shape [1].
 */
export const learnedScaleOnnx: OnnxRule<LearnedScaleAttrs> = {
  op: 'learnedScale',
  emit: (ctx) => ctx.op('Mul', [ctx.inputNames[0], ctx.param('alpha')]),
};

/**
 * Registers `learnedScale` into `registry` and provides its ONNX lowering. Calling it twice does
 * nothing; a registry holding a different `learnedScale` is an error (DUPLICATE_OP).
 *
 * @example
 * const model = loadFromBuffer(bytes, { registry: register(createOpRegistry()) });
 * const net = ProgressiveNet.fromModel(model);
 */
export function register(registry: OpRegistry): OpRegistry {
  return registry.register(learnedScale).provide('onnx', learnedScale.name, learnedScaleOnnx);
}

/**
 * A registry with the built-in ops and `learnedScale` (`base`, or a new one): pass it to
 * `loadFromBuffer`/`load` to read a saved progressive network back.
 *
 * @deprecated Use {@link register} (`register(base ?? createOpRegistry())`). A `base` holding a
 * different `learnedScale` is now an error (DUPLICATE_OP) instead of being kept silently.
 */
export function progressiveRegistry(base?: OpRegistry): OpRegistry {
  return register(base ?? createOpRegistry());
}
