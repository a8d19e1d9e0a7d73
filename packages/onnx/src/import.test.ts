import { describe, it, expect, beforeAll } from 'vitest';
import { tf, isRsError } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { importOnnx } from './index';
import { compareImport, fixture, RELATIVE } from './import-harness';
import { randomInput } from './test-harness';

beforeAll(async () => {
  await install();
});

describe('importOnnx: PyTorch fixtures equal ONNX Runtime on the original file', () => {
  for (const [name, shape, nchw] of [
    ['lenet.onnx', [3, 784], false],
    ['cnn.onnx', [3, 28, 28, 1], true],
    ['resnet20.onnx', [2, 32, 32, 3], true],
    ['mobilenetv2.onnx', [2, 32, 32, 3], true],
  ] as const) {
    it(name, async () => {
      const bytes = fixture(name);
      const model = importOnnx(bytes);
      const x = randomInput([...shape], 7);
      try {
        const result = await compareImport(model, bytes, x, nchw);
        console.log(name, result);
        expect(result.maxAbs).toBeGreaterThan(1e-3);
        expect(result.relative).toBeLessThanOrEqual(RELATIVE);
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }
});
