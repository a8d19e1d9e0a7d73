import { describe, it, expect, beforeAll } from 'vitest';
import { tf, isRsError, createOpRegistry } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { importOnnx, toOnnx } from './index';
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
        expect(result.maxAbs).toBeGreaterThan(1e-3);
        expect(result.relative).toBeLessThanOrEqual(RELATIVE);
      } finally {
        x.dispose();
        model.dispose();
      }
    });
  }
});

describe('importOnnx: fuseBatchNorm', () => {
  it('folds each BatchNormalization into its convolution, still equal to ORT', async () => {
    const bytes = fixture('cnn.onnx');
    const model = importOnnx(bytes, { fuseBatchNorm: true });
    const ops = model.graph.nodes.map((n) => n.op);
    expect(ops).not.toContain('batchNorm');
    expect(ops.filter((op) => op === 'conv2d')).toHaveLength(2);
    const x = randomInput([2, 28, 28, 1], 9);
    try {
      const result = await compareImport(model, bytes, x, true);
      expect(result.maxAbs).toBeGreaterThan(1e-3);
      expect(result.relative).toBeLessThanOrEqual(RELATIVE);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
});

describe('importOnnx: decomposed forms (opset 13)', () => {
  it('reads the erf GELU and the decomposed LayerNorm as one node each; equal to ORT, and after export', async () => {
    const bytes = fixture('gelu-layernorm13.onnx');
    const model = importOnnx(bytes);
    expect(model.graph.nodes.map((n) => n.op)).toEqual(['dense', 'onnx.geluErf', 'layerNorm', 'dense']);
    const x = randomInput([3, 16], 5, 2);
    try {
      for (const file of [bytes, toOnnx(model)]) {
        const result = await compareImport(model, file, x, false);
        expect(result.maxAbs).toBeGreaterThan(1e-3);
        expect(result.relative).toBeLessThanOrEqual(RELATIVE);
      }
    } finally {
      x.dispose();
      model.dispose();
    }
  });
});

describe('importOnnx: what it refuses', () => {
  it('lists every unsupported node (name, op type, opset) in one typed error and changes nothing', () => {
    const registry = createOpRegistry();
    const ops = registry.names();
    const tensors = tf.memory().numTensors;
    let error: unknown;
    try {
      importOnnx(fixture('unsupported.onnx'), { registry });
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'UNSUPPORTED_IMPORT')).toBe(true);
    const problems = (error as { details: { problems: { node: string; opType: string; opset: number }[] } }).details.problems;
    expect(problems.map((p) => [p.node, p.opType, p.opset])).toEqual([
      ['refine', 'Loop', 13],
      ['nms', 'NonMaxSuppression', 13],
    ]);
    expect((error as Error).message).toContain("node 'refine' (Loop, opset 13)");
    expect((error as Error).message).toContain("node 'nms' (NonMaxSuppression, opset 13)");
    expect(tf.memory().numTensors).toBe(tensors);
    expect(registry.names()).toEqual(ops);
  });

  it('refuses bytes that are not an ONNX model with a typed error', () => {
    expect(() => importOnnx(new Uint8Array([1, 2, 3, 4]))).toThrow(expect.objectContaining({ code: 'IO_CORRUPT' }));
    expect(() => importOnnx(new Uint8Array())).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
