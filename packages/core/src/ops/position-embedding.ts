import { tf } from '../tf';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';

export interface PositionEmbeddingAttrs {
  /** Longest sequence supported. */
  maxLength: number;
}

/** Adds a learned embedding of each position to `[N, T, D]` (T <= maxLength). */
export const positionEmbedding: OpSchema<PositionEmbeddingAttrs> = {
  name: 'positionEmbedding',
  arity: 1,
  infer(attrs, [x], ctx) {
    if (!Number.isInteger(attrs.maxLength) || attrs.maxLength < 1) ctx.failAttrs(`maxLength must be a positive integer, got ${String(attrs.maxLength)}`);
    const [, t, d] = x.shape;
    if (x.shape.length !== 3 || typeof d !== 'number') ctx.fail(`expects [batch, time, features], got ${formatShape(x.shape)}`);
    if (typeof t === 'number' && t > attrs.maxLength) ctx.fail(`sequence length ${t} exceeds maxLength ${attrs.maxLength}`);
    return { shape: [...x.shape], dtype: 'float32' };
  },
  params: (attrs, [x]) => ({ table: { shape: [attrs.maxLength, x.shape[2] as number], init: { kind: 'normal', std: 0.02 } } }),
  forward([x], { table }) {
    const t = x.shape[1] as number;
    return tf.add(x, tf.slice(table, [0, 0], [t, -1]));
  },
  units(u) {
    const layout = u.input(0);
    u.consume(layout, 'table', 1);
    return layout;
  },
  flops: (_attrs, [x]) => (x.shape[1] ?? 1) * (x.shape[2] ?? 1),
};
