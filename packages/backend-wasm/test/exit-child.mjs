// Child process for the clean-exit test: uses wasm with worker threads, then simply ends.
import { tf } from '@rs/core';
import { install, threadsCount } from '@rs/backend-wasm';

await install({ threads: 2 });
const a = tf.randomNormal([256, 256]);
const product = tf.matMul(a, a);
console.log(JSON.stringify({ backend: tf.getBackend(), threads: threadsCount(), value: tf.sum(product).dataSync()[0] }));
