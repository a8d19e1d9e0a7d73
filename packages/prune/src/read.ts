import { tf, type Tensor } from '@rs/core';

/**
 * Runs `body` in a tidy scope and returns its tensor's values, disposing the tensor. (Never
 * return a TypedArray out of `tf.tidy`: it scans it; and never leave the tensor alive.)
 */
export function readValues(body: () => Tensor): Float32Array {
  const t = tf.tidy(body);
  try {
    return t.dataSync() as Float32Array;
  } finally {
    t.dispose();
  }
}
