import { tf, type Tensor } from '../tf';

/**
 * `tf.valueAndGrads(f)(xs)` that releases everything when `f` (a loss, an op, a shape check)
 * throws. tfjs records the forward pass on a tape whose saved tensors are kept outside every
 * tidy scope and are released only at the end of a successful backward pass, so a throwing `f`
 * would leave them alive (about 20 tensors per call for a small MLP) and the tape dangling. This
 * is the one place in the library that calls `tf.valueAndGrads`.
 *
 * @example
 * const { value, grads } = tf.tidy(() => valueAndGrads((w) => tf.sum(tf.square(w)), [w]));
 */
export function valueAndGrads(f: (...args: Tensor[]) => Tensor, xs: Tensor[]): { value: Tensor; grads: Tensor[] } {
  const state = tf.engine().state;
  const outermost = state.gradientDepth === 0;
  try {
    return tf.valueAndGrads(f)(xs);
  } catch (error) {
    // Only the outermost gradient call owns the tape (higher-order gradients nest on it).
    if (outermost && state.gradientDepth === 0 && state.activeTape) {
      for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
      state.activeTape = null as never;
    }
    throw error;
  }
}
