// Shared by this package's tests: the reference backend, installed the way users install it.
import '@tensorflow/tfjs-backend-cpu';
import { tf } from './tf';

export async function useCpu(): Promise<void> {
  await tf.setBackend('cpu');
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if ('firstUse' in backend) backend.firstUse = false;
}

/** Largest absolute difference between two tensors (as a number). */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}
