import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '@rs/core';
import { install } from '@rs/backend-wasm';
import { loadMnist } from '@rs/datasets';
import { importOnnx } from './index';
import { fixture } from './import-harness';

// On the wasm backend: 2,000 digits through the CNN cost seconds on the reference cpu backend.
beforeAll(async () => {
  await install();
});

describe('importOnnx: PyTorch-trained MNIST models keep their predictions', () => {
  it('LeNet-300-100 and the small CNN predict what PyTorch predicted on the 2,000 test digits', async () => {
    const stored = JSON.parse(new TextDecoder().decode(fixture('mnist-predictions.json'))) as Record<string, { accuracy: number; predictions: number[] }>;
    const { test } = loadMnist();
    for (const [name, shape] of [['lenet', [784]], ['cnn', [28, 28, 1]]] as const) {
      const model = importOnnx(fixture(`${name}.onnx`));
      const x = tf.tensor(test.x, [test.count, ...shape]);
      const predicted = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: 500 }), -1));
      const ours = Array.from(predicted.dataSync());
      tf.dispose([x, predicted]);
      model.dispose();
      const theirs = stored[name].predictions;
      expect(ours.length).toBe(2000);
      const differ = ours.filter((p, i) => p !== theirs[i]).length;
      const accuracy = ours.filter((p, i) => p === test.y[i]).length / test.count;
      expect(differ, name).toBe(0);
      expect(accuracy).toBeCloseTo(stored[name].accuracy, 6);
      expect(accuracy).toBeGreaterThan(0.9);
    }
  });
});

