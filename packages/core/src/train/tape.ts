import { tf, type Tensor } from '../tf';

/**
 * The value of `f(...xs)` and its gradients with respect to `xs`, releasing everything when `f`
 * (a loss, an op, a shape check) throws. tfjs records the forward pass on a tape whose saved
 * tensors are kept outside every tidy scope and are released only at the end of a successful
 * backward pass, so a throwing `f` would leave them alive (about 20 tensors per call for a small
 * MLP) and the tape dangling. A tensor of `xs` that `f` does not reach gets `undefined` (tfjs's
 * own `valueAndGrads` throws instead), so a pass that skips blocks differentiates the rest. Every
 * gradient in the library (the training step, the conformance harness) is taken here.
 *
 * @example
 * const { value, grads } = tf.tidy(() => valueAndGrads((w) => tf.sum(tf.square(w)), [w]));
 */
export function valueAndGrads(f: (...args: Tensor[]) => Tensor, xs: Tensor[]): { value: Tensor; grads: (Tensor | undefined)[] } {
  const engine = tf.engine();
  const state = engine.state;
  const outermost = state.gradientDepth === 0;
  try {
    const { value, grads } = engine.gradients(() => f(...xs), xs, undefined, true);
    return { value, grads: grads.map((g) => g ?? undefined) };
  } catch (error) {
    // Only the outermost gradient call owns the tape (higher-order gradients nest on it).
    if (outermost && state.gradientDepth === 0 && state.activeTape) {
      for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
      state.activeTape = null as never;
    }
    throw error;
  }
}

/**
 * True while a gradient tape is recording (inside `valueAndGrads`). Ops may pick a formulation
 * whose backward pass is cheaper then: tfjs's fused matmul (bias in the product) is faster
 * forward, but its gradient is much slower than that of a matmul plus an add.
 */
export function recordingGradients(): boolean {
  return tf.engine().state.gradientDepth > 0;
}
