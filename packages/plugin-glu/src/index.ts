/**
 * An example plugin: the gated linear unit `y = (x W + b) * sigmoid(x V + c)` (Dauphin et al.
 * 2017), registered through @rs/core's op registry with a unit declaration, so that every
 * structural edit (remove, insert, permute units) works on it without any change to core.
 */
import { tf, type OpRegistry, type OpSchema, formatShape } from '@rs/core';

export interface GatedLinearAttrs {
  units: number;
}

/**
 * The `gatedLinear` op.
 *
 * @example
 * registry.register(gatedLinear);
 * // { id: 'glu', op: 'gatedLinear', inputs: ['x'], attrs: { units: 32 } }
 */
export const gatedLinear: OpSchema<GatedLinearAttrs> = {
  name: 'gatedLinear',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (!Number.isInteger(attrs.units) || attrs.units < 1) ctx.failAttrs(`units must be a positive integer, got ${String(attrs.units)}`);
    if (x.shape.length !== 2 || x.shape[1] === null) ctx.fail(`expects [batch, features], got ${formatShape(x.shape)}`);
    return { shape: [x.shape[0], attrs.units], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const fanIn = x.shape[1] as number;
    const init = { kind: 'glorotUniform', fanIn, fanOut: attrs.units } as const;
    return {
      w: { shape: [fanIn, attrs.units], init },
      v: { shape: [fanIn, attrs.units], init },
      b: { shape: [attrs.units], init: { kind: 'zeros' }, role: 'bias' },
      c: { shape: [attrs.units], init: { kind: 'zeros' }, role: 'bias' },
    };
  },
  forward([x], { w, v, b, c }) {
    const value = tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b);
    const gate = tf.sigmoid(tf.add(tf.matMul(x as tf.Tensor2D, v as tf.Tensor2D), c));
    return tf.mul(value, gate);
  },
  // The whole structural contract: the input's units index the rows of w and v; this node's
  // units are the columns of w and v and the entries of b and c.
  units(u) {
    u.consume(u.input(0), 'w', 0);
    u.consume(u.input(0), 'v', 0);
    return u.source('out', u.attrs.units, [
      { param: 'w', axis: 1 },
      { param: 'v', axis: 1 },
      { param: 'b', axis: 0 },
      { param: 'c', axis: 0 },
    ]);
  },
  flops: (attrs, [x]) => 4 * (x.shape[1] as number) * attrs.units + 4 * attrs.units,
  syncAttrs: (attrs, shapes) => ({ ...attrs, units: shapes.w[1] }),
};

/**
 * Registers this plugin's ops into `registry` (the `register(registry)` every technique package
 * and plugin exports; `rs --plugin` calls it). Calling it twice does nothing.
 */
export function register(registry: OpRegistry): OpRegistry {
  return registry.register(gatedLinear);
}

/** @deprecated Use {@link register}. */
export const registerGlu: (registry: OpRegistry) => OpRegistry = register;
