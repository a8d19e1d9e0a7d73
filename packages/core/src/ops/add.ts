import { tf } from '../tf';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';
import { elementwiseFlops } from './elementwise';

/** Elementwise sum of two or more tensors of the same shape (residual connections). */
export const add: OpSchema<Record<string, never>> = {
  name: 'add',
  arity: [2, Infinity],
  infer(_attrs, inputs, ctx) {
    const first = inputs[0];
    for (const other of inputs.slice(1)) {
      const same = other.shape.length === first.shape.length && other.shape.every((d, i) => d === first.shape[i]);
      if (!same) ctx.fail(`inputs must have equal shapes, got ${inputs.map((i) => formatShape(i.shape)).join(' and ')}`);
      if (other.dtype !== first.dtype) ctx.fail(`inputs must have equal dtypes, got ${inputs.map((i) => i.dtype).join(' and ')}`);
    }
    return { shape: [...first.shape], dtype: first.dtype };
  },
  forward: (inputs) => (inputs.length === 2 ? tf.add(inputs[0], inputs[1]) : tf.addN(inputs)),
  units: 'elementwise',
  flops: (attrs, inputs, output) => elementwiseFlops(inputs.length - 1)(attrs, inputs, output),
};
