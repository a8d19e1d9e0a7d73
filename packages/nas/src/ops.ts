import { tf, formatShape, type OpSchema } from '@rs/core';

/** Attributes of the `nas.mixed` op. */
export interface MixedAttrs {
  /** Label of each input (the candidate op it comes from), e.g. `['none', 'skip_connect', ...]`. */
  candidates: string[];
  /**
   * Dropout on one candidate during training (P-DARTS' operation-level dropout on skip
   * connections, Chen et al. 2019): `{ candidate: 'skip_connect', rate: 0.3 }`.
   */
  candidateDropout?: { candidate: string; rate: number };
}

/**
 * DARTS' mixed operation (Liu et al. 2019): the weighted sum of its K candidate inputs,
 * weights = softmax(alpha), with `alpha` (shape [K]) a parameter of role `arch`.
 *
 * @example
 * { id: 'e1', op: 'nas.mixed', inputs: ['e1.none', 'x', 'e1.conv1', 'e1.conv3', 'e1.pool'],
 *   attrs: { candidates: ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'] } }
 */
export const mixed: OpSchema<MixedAttrs> = {
  name: 'nas.mixed',
  arity: [1, Infinity],
  infer(attrs, inputs, ctx) {
    if (!Array.isArray(attrs.candidates) || attrs.candidates.length !== inputs.length) {
      ctx.failAttrs(`candidates must label each of the ${inputs.length} inputs, got ${JSON.stringify(attrs.candidates)}`);
    }
    const drop = attrs.candidateDropout;
    if (drop !== undefined && (!attrs.candidates.includes(drop.candidate) || !(drop.rate >= 0 && drop.rate < 1))) {
      ctx.failAttrs(`candidateDropout must name one of the candidates and have a rate in [0, 1), got ${JSON.stringify(drop)}`);
    }
    const first = inputs[0];
    for (const other of inputs) {
      if (other.shape.length !== first.shape.length || other.shape.some((d, i) => d !== first.shape[i])) {
        ctx.fail(`candidate inputs must have equal shapes, got ${inputs.map((i) => formatShape(i.shape)).join(' and ')}`);
      }
    }
    return { shape: [...first.shape], dtype: 'float32' };
  },
  params: (attrs) => ({ alpha: { shape: [attrs.candidates.length], init: { kind: 'normal', std: 1e-3 }, role: 'arch' } }),
  forward(inputs, { alpha }, attrs, ctx) {
    const weights = tf.softmax(alpha);
    const parts = inputs.map((x, k) => {
      let value = x;
      const drop = attrs.candidateDropout;
      if (ctx.training && drop && drop.rate > 0 && attrs.candidates[k] === drop.candidate) value = tf.dropout(x, drop.rate, undefined, ctx.rng.seed());
      return tf.mul(value, tf.slice(weights, [k], [1]));
    });
    return parts.length === 1 ? parts[0] : tf.addN(parts);
  },
  units: 'elementwise',
  flops: (attrs, inputs, output) => 2 * inputs.length * output.shape.reduce<number>((p, d) => p * (d ?? 1), 1),
};

/**
 * The `none` operation of cell spaces: zeros shaped like its input (an edge that carries
 * nothing). Kept as a node so that a cell whose edges are all `none` still has an output.
 */
export const zero: OpSchema<Record<string, never>> = {
  name: 'nas.zero',
  arity: 1,
  infer: (_attrs, [x]) => ({ shape: [...x.shape], dtype: x.dtype }),
  forward: ([x]) => tf.zerosLike(x),
  units: 'elementwise',
  flops: () => 0,
};

/** The ops of @rs/nas. */
export const nasOps = [mixed, zero] as const;
