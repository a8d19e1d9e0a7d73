// The smallest deployed app: load a saved model (pruned, with a calibrated early exit) and
// classify with it. It imports only the inference parts: model loading and the executor from
// @rs/core, the early exit from @rs/dynamic, the wasm backend from @rs/backend-wasm/runtime.
// Its production bundle is measured by test/deploy.test.ts (figure in docs/deploy.md).
import { loadFromBuffer, tf, type Model } from '@rs/core';
import { earlyExitPredict } from '@rs/dynamic';
import { install } from '@rs/backend-wasm/runtime';

declare global {
  interface Window {
    /** Test hook: logits and exit of each of `count` digits (784 floats each). */
    rsClassify: (pixels: number[], count: number) => Promise<{ logits: number[]; exitIndex: number[]; numTensors: number }>;
  }
}

const status = document.getElementById('status') as HTMLParagraphElement;
let model: Model | undefined;

window.rsClassify = async (pixels, count) => {
  if (!model) throw new Error('no model loaded');
  const x = tf.tensor2d(Float32Array.from(pixels), [count, 784]);
  const { logits, exitIndex } = earlyExitPredict(model, x);
  const values = Array.from(await logits.data());
  tf.dispose([x, logits]);
  return { logits: values, exitIndex: Array.from(exitIndex), numTensors: tf.memory().numTensors };
};

try {
  await install({ wasmPaths: new URL('wasm/', document.baseURI).href });
  const response = await fetch('./model.rsm');
  if (!response.ok) throw new Error(`model.rsm: HTTP ${response.status}`);
  model = loadFromBuffer(await response.arrayBuffer());
  document.body.dataset.state = 'ready';
  status.textContent = `Loaded model.rsm on ${tf.getBackend()}.`;
} catch (error) {
  document.body.dataset.state = 'error';
  status.textContent = String(error);
}
