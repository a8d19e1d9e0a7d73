/**
 * A template for an @rs/core op plugin. Copy this folder, rename the package, replace the two
 * ops with yours. It shows the two kinds of unit declaration a plugin author most often needs:
 *
 * - `prelu`: an elementwise op with a learned per-unit parameter (the negative slope). Its
 *   units are its input's; the slope is indexed by them, so it shrinks when units are removed,
 *   grows when units are inserted (new entries get the initializer, 0.25), and is permuted with
 *   them. Inserting units stays function-preserving.
 * - `rmsNorm`: a normalisation across units (`x / rms(x) * gain`). Every output depends on all
 *   units of the group, so inserting units changes the function whatever the new weights are.
 *   The op says so with `u.normalizes`, and core refuses `insertUnits` on that group unless the
 *   caller passes `{ allowFunctionChange: true }`.
 *
 * `register(registry)` is what `rs --plugin <this package>` calls.
 */
import { tf, formatShape, type OpRegistry, type OpSchema, type TensorInfo } from '@rs/core';

/** Attributes of `prelu`. */
export interface PreluAttrs {
  /** Initial value of every slope (and of the slopes of inserted units). Default 0.25. */
  initialSlope?: number;
}

/** Attributes of `rmsNorm`. */
export interface RmsNormAttrs {
  /** Added to the mean square. Default 1e-6. */
  epsilon?: number;
}

/** Shared shape check: a float32 input of rank >= 2 whose last (feature) axis is known. */
function featureInput(x: TensorInfo, fail: (message: string) => never): number {
  const last = x.shape[x.shape.length - 1];
  if (x.dtype !== 'float32') fail(`expects a float32 input, got ${x.dtype}`);
  if (x.shape.length < 2 || typeof last !== 'number') fail(`expects an input of rank >= 2 with a known last axis, got ${formatShape(x.shape)}`);
  return last as number;
}

/**
 * Parametric ReLU with one learned slope per unit: `y = x` where `x > 0`, else `alpha[u] * x`
 * (He et al. 2015).
 *
 * @example
 * // { id: 'act1', op: 'prelu', inputs: ['fc1'], attrs: {} }
 */
export const prelu: OpSchema<PreluAttrs> = {
  name: 'prelu',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (attrs.initialSlope !== undefined && !Number.isFinite(attrs.initialSlope)) ctx.failAttrs(`initialSlope must be a finite number, got ${String(attrs.initialSlope)}`);
    featureInput(x, ctx.fail);
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const units = x.shape[x.shape.length - 1] as number;
    return { alpha: { shape: [units], init: { kind: 'constant', value: attrs.initialSlope ?? 0.25 } } };
  },
  // Runs inside tf.tidy; `alpha` arrives with any mask applied. Written with differentiable
  // ops only (a tf.where on a comparison has no gradient through the comparison).
  forward([x], { alpha }) {
    return tf.add(tf.relu(x), tf.mul(alpha, tf.minimum(x, 0)));
  },
  // Elementwise: the output carries the input's units. `consume` says that axis 0 of `alpha` is
  // indexed by those units, so every unit edit resizes or reorders it. (1-D parameters indexed
  // this way get their initializer on insert; matrices would get zeros.)
  units(u) {
    const l = u.input(0);
    u.consume(l, 'alpha', 0);
    return l;
  },
  // compare, multiply, select per element.
  flops: (_attrs, _inputs, output) => 3 * output.shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1),
};

/**
 * RMS normalisation over the feature axis with a learned per-unit gain (Zhang & Sennrich 2019):
 * `y = x / sqrt(mean(x^2) + epsilon) * gain`.
 *
 * @example
 * // { id: 'norm', op: 'rmsNorm', inputs: ['fc2'], attrs: { epsilon: 1e-6 } }
 */
export const rmsNorm: OpSchema<RmsNormAttrs> = {
  name: 'rmsNorm',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (attrs.epsilon !== undefined && !(typeof attrs.epsilon === 'number' && attrs.epsilon > 0 && Number.isFinite(attrs.epsilon))) {
      ctx.failAttrs(`epsilon must be a positive number, got ${String(attrs.epsilon)}`);
    }
    featureInput(x, ctx.fail);
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params(_attrs, [x]) {
    const units = x.shape[x.shape.length - 1] as number;
    return { gain: { shape: [units], init: { kind: 'ones' } } };
  },
  forward([x], { gain }, attrs) {
    const meanSquare = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, attrs.epsilon ?? 1e-6))), gain);
  },
  // The gain is indexed by the input's units, like prelu's slope. `normalizes` declares that the
  // op takes a statistic over those units: core then marks the group
  // (`group.insertChangesFunction`) and refuses to insert units into it by default.
  units(u) {
    const l = u.input(0);
    u.consume(l, 'gain', 0);
    return u.normalizes(l, 'the root mean square is taken over them');
  },
  // square, mean, add, rsqrt (per row), mul, mul gain.
  flops: (_attrs, _inputs, output) => 4 * output.shape.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1),
};

/** Every op of this plugin. */
export const ops: readonly OpSchema<any>[] = [prelu, rmsNorm];

/**
 * Registers this plugin's ops into `registry` and returns it. `rs --plugin <package or path>`
 * calls this export; in code, pass the registry to `Model.create` and `loadFromBuffer`.
 *
 * @example
 * const registry = register(createOpRegistry());
 * const model = loadFromBuffer(bytes, { registry });
 */
export function register(registry: OpRegistry): OpRegistry {
  for (const op of ops) registry.register(op);
  return registry;
}
