import { tf } from '../tf';
import { formatShape } from '../errors';
import type { OpSchema } from './schema';
import { checkPositiveInt } from './attrs';

export interface EmbeddingAttrs {
  /** Number of token ids; ids must lie in [0, vocabSize). */
  vocabSize: number;
  /** Features per token. */
  dim: number;
}

/**
 * Looks up int32 token ids in a `[vocabSize, dim]` table: `[N, ...] -> [N, ..., dim]`.
 * Units: the embedding features (table columns).
 *
 * @example
 * { id: 'embed', op: 'embedding', inputs: ['tokens'], attrs: { vocabSize: 1000, dim: 64 } }
 */
export const embedding: OpSchema<EmbeddingAttrs> = {
  name: 'embedding',
  arity: 1,
  infer(attrs, [ids], ctx) {
    checkPositiveInt(ctx, 'vocabSize', attrs.vocabSize);
    const dim = checkPositiveInt(ctx, 'dim', attrs.dim);
    if (ids.dtype !== 'int32') ctx.fail(`expects int32 token ids, got ${ids.dtype} ${formatShape(ids.shape)}`);
    if (ids.shape.length < 1) ctx.fail(`expects ids with a batch dimension, got ${formatShape(ids.shape)}`);
    return { shape: [...ids.shape, dim], dtype: 'float32' };
  },
  params(attrs) {
    // Same scale as GPT-2 / BERT token embeddings.
    return { table: { shape: [attrs.vocabSize, attrs.dim], init: { kind: 'normal', std: 0.02 } } };
  },
  // Gather's gradient needs UnsortedSegmentSum (cpu has it; wasm does not, see shared notes).
  forward: ([ids], params) => tf.gather(params.table, ids),
  units: (u) => u.source('out', u.attrs.dim, [{ param: 'table', axis: 1 }]),
  syncAttrs(attrs, shapes) {
    return { ...attrs, vocabSize: shapes.table[0], dim: shapes.table[1] };
  },
};
