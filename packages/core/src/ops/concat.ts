import { tf } from '../tf';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';
import { axisOf, resolveAxis } from './attrs';

export interface ConcatAttrs {
  /** Default -1 (the feature axis). The batch axis is refused. */
  axis?: number;
}

/**
 * Concatenates two or more tensors along `axis`. On the feature axis the output's units are the
 * inputs' units side by side; on any other axis the inputs' units are the same units (merged).
 *
 * @example
 * { id: 'cat', op: 'concat', inputs: ['branchA', 'branchB'], attrs: {} }
 */
export const concat: OpSchema<ConcatAttrs> = {
  name: 'concat',
  arity: [2, Infinity],
  infer(attrs, inputs, ctx) {
    const first = inputs[0];
    const rank = first.shape.length;
    const all = inputs.map((i) => formatShape(i.shape)).join(', ');
    if (rank < 2) ctx.fail(`expects inputs of rank >= 2, got ${all}`);
    const axis = resolveAxis(ctx, attrs.axis, first.shape);
    let total = 0;
    for (const input of inputs) {
      if (input.dtype !== first.dtype) ctx.fail(`inputs must have equal dtypes, got ${inputs.map((i) => i.dtype).join(', ')}`);
      if (input.shape.length !== rank) ctx.fail(`inputs must have equal ranks, got ${all}`);
      const agree = input.shape.every((d, i) => i === axis || d === first.shape[i]);
      if (!agree) ctx.fail(`inputs must agree on every axis but ${axis}, got ${all}`);
      const size = input.shape[axis];
      if (size === null) return ctx.fail(`needs known sizes on the concat axis ${axis}, got ${all}`);
      total += size;
    }
    const shape = [...first.shape];
    shape[axis] = total;
    return { shape, dtype: first.dtype };
  },
  forward(inputs, _params, attrs) {
    return tf.concat(inputs, axisOf(attrs.axis, inputs[0].rank));
  },
  units(u) {
    const rank = u.output.shape.length;
    const layouts = u.inputs.map((_, i) => u.input(i));
    if (axisOf(u.attrs.axis, rank) !== rank - 1) return u.merge(...layouts);
    return u.concat(
      layouts,
      u.inputs.map((i) => i.shape[rank - 1] as number),
    );
  },
};
