// The one place that imports TensorFlow.js. Other @rs packages use the `tf` re-exported here.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node entry registers no gradients, and plain Node cannot import this deep path
// (tfjs-core's package exports do not list it); the build inlines it so that tf.grads works
// under plain Node, ESM and CJS.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

export { tf };
export type Tensor = tf.Tensor;
export type Rank = tf.Rank;
