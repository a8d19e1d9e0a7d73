import { RsError, formatShape, tf, type Tensor } from '@rs/core';

/** Refuses a tensor that is not [tokens, experts] (before any tensor is made). */
function checkMatrix(fn: string, name: string, t: Tensor): [number, number] {
  if (t.rank !== 2) throw new RsError('SHAPE_MISMATCH', `${fn}: ${name} must be [tokens, experts], got ${formatShape(t.shape)}.`, { shape: t.shape });
  return t.shape as [number, number];
}

/**
 * The Switch Transformer load-balancing loss before scaling by alpha (Fedus et al. 2021, eq. 4):
 * `N * sum_i f_i * P_i`, where `f_i` is the fraction of tokens whose first choice is expert i
 * (not differentiable) and `P_i` the mean router probability of expert i (differentiable).
 * Equals 1.0 under perfectly uniform routing; N when everything goes to one expert.
 *
 * @example
 * const unscaled = balanceLoss(probs, r.firstChoice); // probs: [tokens, experts]
 */
export function balanceLoss(probs: Tensor, firstChoice: ArrayLike<number>): Tensor {
  const [tokens, experts] = checkMatrix('balanceLoss', 'probs', probs);
  if (firstChoice.length !== experts) {
    throw new RsError('SHAPE_MISMATCH', `balanceLoss: firstChoice has ${firstChoice.length} counts for ${experts} experts.`, { counts: firstChoice.length, experts });
  }
  return tf.tidy(() => {
    const fractions = tf.tensor1d(Array.from(firstChoice, (c) => c / tokens));
    return tf.mul(tf.sum(tf.mul(fractions, tf.mean(probs, 0))), experts);
  });
}

/**
 * Router z-loss (Zoph et al. 2022, ST-MoE eq. 5) before its coefficient: the mean over tokens
 * of `logsumexp(logits)^2`; it keeps router logits small so the softmax stays stable.
 *
 * @example
 * const z = routerZLoss(logits); // logits: [tokens, experts]
 */
export function routerZLoss(logits: Tensor): Tensor {
  checkMatrix('routerZLoss', 'logits', logits);
  return tf.tidy(() => tf.mean(tf.square(tf.logSumExp(logits, 1))));
}

/** Mean entropy (nats) of the router distributions `probs` ([tokens, experts]). */
export function routerEntropy(probs: Tensor): Tensor {
  checkMatrix('routerEntropy', 'probs', probs);
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(probs, tf.log(tf.add(probs, 1e-9))), 1))));
}
