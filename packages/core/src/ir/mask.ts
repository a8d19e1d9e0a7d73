import { tf, type Tensor } from '../tf';

/**
 * The one rule of element masks, written once: a masked parameter's effective value is
 * `value * mask` (1 keeps a weight, 0 prunes it). Forward passes read parameters through it
 * (`Model.forwardParams`), and everything that stores a value (optimizer updates, `setParam`,
 * `setMask`, inserted units) stores it masked, so pruned weights stay exactly zero.
 */
export function applyMask(value: Tensor, mask: Tensor | undefined): Tensor {
  return mask ? tf.mul(value, mask) : value;
}
