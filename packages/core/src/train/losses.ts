import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import { backendHasKernel } from '../backend';

/** A loss: prediction and target to a scalar (mean over the batch). */
export type LossFn = (prediction: Tensor, target: Tensor) => Tensor;

/** Built-in losses by name. */
export type LossName = 'softmaxCrossEntropy' | 'sigmoidCrossEntropy' | 'mse';

/**
 * Kernels a backend may register to compute softmax cross-entropy with int32 class ids in one
 * pass each way: `RsSoftmaxCrossEntropy` (inputs `logits` [n, c] float32 and `labels` [n] int32)
 * returns the mean over the n rows of -log softmax(logits)[label] (a scalar) and the softmax
 * [n, c]; `RsSoftmaxCrossEntropyGrad` (inputs `dy` scalar, `probs` [n, c], `labels` [n]) returns
 * dy (probs - onehot(labels)) / n. A label outside [0, c) adds nothing and gets a zero gradient
 * row, as the composed form (a zero one-hot row) gives. Without both kernels the loss is composed
 * of tfjs ops and differentiated by autodiff. @rs/backend-native and @rs/backend-wasm register them.
 */
export const SOFTMAX_CE_KERNEL = 'RsSoftmaxCrossEntropy';
export const SOFTMAX_CE_GRAD_KERNEL = 'RsSoftmaxCrossEntropyGrad';

/** The fused form: one kernel forward, one backward (the labels are not differentiated). */
function fusedSoftmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const f = tf.customGrad(((x: Tensor, save: tf.GradSaveFunc) => {
    const [loss, probs] = tf.engine().runKernel(SOFTMAX_CE_KERNEL, { logits: x, labels }) as Tensor[];
    save([probs]);
    return {
      value: loss,
      gradFunc: (dy: Tensor, [saved]: Tensor[]) => tf.engine().runKernel(SOFTMAX_CE_GRAD_KERNEL, { dy, probs: saved, labels }) as Tensor,
    };
  }) as never) as unknown as (x: Tensor) => Tensor;
  return f(logits);
}

/**
 * Softmax cross-entropy on logits. `target` is int32 class ids (any shape matching the logits
 * without their last axis, e.g. per-token ids) or one-hot float32 with the logits' shape.
 */
export const softmaxCrossEntropy: LossFn = (logits, target) => {
  const classes = logits.shape[logits.shape.length - 1];
  const flat = tf.reshape(logits, [-1, classes]);
  let labels: Tensor;
  if (target.dtype === 'int32') {
    if (target.size * classes !== logits.size) {
      throw new RsError('DATA_MISMATCH', `softmaxCrossEntropy: ${target.size} class ids do not match logits ${formatShape(logits.shape)}.`);
    }
    const ids = tf.reshape(target, [-1]);
    if (flat.dtype === 'float32' && backendHasKernel(SOFTMAX_CE_KERNEL) && backendHasKernel(SOFTMAX_CE_GRAD_KERNEL)) return fusedSoftmaxCrossEntropy(flat, ids);
    labels = tf.oneHot(ids as tf.Tensor1D, classes);
  } else {
    if (target.size !== logits.size) throw new RsError('DATA_MISMATCH', `softmaxCrossEntropy: targets ${formatShape(target.shape)} do not match logits ${formatShape(logits.shape)}.`);
    labels = tf.reshape(target, [-1, classes]);
  }
  const logProbs = tf.logSoftmax(flat);
  return tf.neg(tf.mean(tf.sum(tf.mul(labels, logProbs), -1)));
};

/** Sigmoid cross-entropy on logits, targets in [0, 1], numerically stable form. */
export const sigmoidCrossEntropy: LossFn = (logits, target) => {
  const y = tf.reshape(tf.cast(target, 'float32'), logits.shape);
  // max(x, 0) - x*y + log(1 + exp(-|x|))
  return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, y)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))));
};

/** Mean squared error. */
export const mse: LossFn = (prediction, target) => tf.mean(tf.squaredDifference(prediction, tf.reshape(tf.cast(target, 'float32'), prediction.shape)));

export function resolveLoss(loss: LossName | LossFn): LossFn {
  if (typeof loss === 'function') return loss;
  const table: Record<LossName, LossFn> = { softmaxCrossEntropy, sigmoidCrossEntropy, mse };
  const fn = table[loss];
  if (!fn) throw new RsError('INVALID_ARGUMENT', `Unknown loss '${String(loss)}'; use ${Object.keys(table).join(', ')} or a function.`);
  return fn;
}
