// Backend selection shared by benchmarks and examples: `wasm` (@rs/backend-wasm), `native`
// (@rs/backend-native), `cpu`
// (@rs/backend-cpu) or `stock-wasm` (tfjs-backend-wasm as published, for baselines).
import { tf, useBackend } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';

export async function selectBackend(name, options = {}) {
  await installCpu({ activate: false });
  if (name === 'wasm') {
    const { install } = await import('@rs/backend-wasm');
    await install({ threads: options.threads });
  } else if (name === 'native') {
    const { install } = await import('@rs/backend-native');
    await install({ threads: options.threads });
  } else if (name === 'stock-wasm') {
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.setBackend('wasm');
  } else {
    await useBackend(name);
  }
  return tf.getBackend();
}
