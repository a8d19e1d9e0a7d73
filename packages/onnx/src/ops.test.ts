import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, type GraphDef, type NodeDef, type Tensor } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { compareWithOrt, randomInput, TOLERANCE } from './test-harness';

beforeAll(async () => {
  await install();
});

/** A one-input graph: `nodes` after input `x` of `shape` (batch first, null). */
function graph(shape: (number | null)[], nodes: NodeDef[], outputs?: string[], dtype: 'float32' | 'int32' = 'float32'): GraphDef {
  return { inputs: [{ id: 'x', shape, dtype }], nodes, outputs: outputs ?? [nodes[nodes.length - 1].id] };
}

/**
 * Builds the model with seeded random parameters (biases and norm statistics included, so none
 * is trivially 0 or 1), runs it on cpu and in ONNX Runtime, and returns the comparison.
 */
async function check(g: GraphDef, x: Tensor, seed = 1, options = {}): Promise<number> {
  const model = Model.create(g, { seed });
  model.edit((tx) => {
    let k = 0;
    for (const key of model.paramKeys()) {
      const entry = model.param(key);
      const isVariance = key.endsWith('/movingVariance');
      const value = tf.tidy(() => {
        const r = tf.randomUniform(entry.value.shape, isVariance ? 0.5 : -0.5, isVariance ? 2 : 0.5, 'float32', seed * 100 + k++);
        return isVariance ? r : tf.add(entry.value, r);
      });
      tx.setParam(key, value);
      value.dispose();
    }
  });
  try {
    const result = await compareWithOrt(model, [x], options);
    expect(result.maxAbs).toBeGreaterThan(1e-3);
    return result.maxDiff;
  } finally {
    model.dispose();
    x.dispose();
  }
}

const x2 = (features: number, seed = 7, scale = 1) => randomInput([3, features], seed, scale);
const x4 = (h: number, w: number, c: number, seed = 7) => randomInput([2, h, w, c], seed);

describe('core ops round-trip through ONNX Runtime within 1e-4', () => {
  it('dense (rank 2 with and without bias, rank 3)', async () => {
    expect(await check(graph([null, 5], [{ id: 'fc', op: 'dense', inputs: ['x'], attrs: { units: 4 } }]), x2(5))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 5], [{ id: 'fc', op: 'dense', inputs: ['x'], attrs: { units: 4, useBias: false } }]), x2(5))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 3, 5], [{ id: 'fc', op: 'dense', inputs: ['x'], attrs: { units: 4 } }]), randomInput([2, 3, 5], 3))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('conv2d: valid, same with stride 2 on odd sizes (asymmetric padding), rectangular kernel, no bias', async () => {
    const conv = (attrs: Record<string, unknown>) => graph([null, 7, 9, 3], [{ id: 'c', op: 'conv2d', inputs: ['x'], attrs }]);
    expect(await check(conv({ filters: 4, kernelSize: 3 }), x4(7, 9, 3))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(conv({ filters: 4, kernelSize: [3, 2], strides: 2, padding: 'same' }), x4(7, 9, 3))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(conv({ filters: 2, kernelSize: 4, strides: [2, 3], padding: 'same', useBias: false }), x4(7, 9, 3))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('maxPool2d and avgPool2d: valid, same (padding excluded from the average), strides', async () => {
    for (const op of ['maxPool2d', 'avgPool2d']) {
      const pool = (attrs: Record<string, unknown>) => graph([null, 7, 5, 2], [{ id: 'p', op, inputs: ['x'], attrs }]);
      expect(await check(pool({ poolSize: 2 }), x4(7, 5, 2))).toBeLessThanOrEqual(TOLERANCE);
      expect(await check(pool({ poolSize: 3, strides: 2, padding: 'same' }), x4(7, 5, 2))).toBeLessThanOrEqual(TOLERANCE);
      expect(await check(pool({ poolSize: [2, 3], strides: [1, 2] }), x4(7, 5, 2))).toBeLessThanOrEqual(TOLERANCE);
      // Stride 1, even window on 'same': one padded row/column, after (TensorFlow's convention).
      expect(await check(pool({ poolSize: 2, strides: 1, padding: 'same' }), x4(7, 5, 2))).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('conv -> relu -> pool -> conv chains share one NCHW transpose per hop', async () => {
    const g = graph([null, 8, 8, 1], [
      { id: 'c1', op: 'conv2d', inputs: ['x'], attrs: { filters: 3, kernelSize: 3, padding: 'same' } },
      { id: 'p1', op: 'maxPool2d', inputs: ['c1'], attrs: { poolSize: 2 } },
      { id: 'c2', op: 'conv2d', inputs: ['p1'], attrs: { filters: 2, kernelSize: 2 } },
      { id: 'r2', op: 'relu', inputs: ['c2'], attrs: {} },
    ]);
    expect(await check(g, x4(8, 8, 1))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('activations: relu, sigmoid, tanh, gelu (tanh form), softmax on the last and a middle axis', async () => {
    for (const op of ['relu', 'sigmoid', 'tanh', 'gelu', 'softmax']) {
      const g = graph([null, 6], [{ id: 'fc', op: 'dense', inputs: ['x'], attrs: { units: 5 } }, { id: 'act', op, inputs: ['fc'], attrs: {} }]);
      expect(await check(g, x2(6, 7, 3))).toBeLessThanOrEqual(TOLERANCE);
    }
    // gelu directly on a grid over [-6, 6], where the tanh and erf forms differ by up to 4.7e-4 (so the erf form would fail).
    const grid = tf.reshape(tf.linspace(-6, 6, 241), [1, 241]);
    expect(await check(graph([null, 241], [{ id: 'act', op: 'gelu', inputs: ['x'], attrs: {} }]), grid)).toBeLessThanOrEqual(TOLERANCE);
    const middle = graph([null, 4, 3], [{ id: 'sm', op: 'softmax', inputs: ['x'], attrs: { axis: 1 } }]);
    expect(await check(middle, randomInput([2, 4, 3], 5, 3))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('batchNorm (inference form, rank 2 and NHWC rank 4) and layerNorm (rank 3, custom epsilon)', async () => {
    expect(await check(graph([null, 6], [{ id: 'bn', op: 'batchNorm', inputs: ['x'], attrs: {} }]), x2(6))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 4, 4, 3], [{ id: 'bn', op: 'batchNorm', inputs: ['x'], attrs: { epsilon: 0.01 } }]), x4(4, 4, 3))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 5, 8], [{ id: 'ln', op: 'layerNorm', inputs: ['x'], attrs: { epsilon: 1e-3 } }]), randomInput([2, 5, 8], 4, 2))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('add (2 and 3 inputs) and concat (feature axis and a middle axis)', async () => {
    const branches: NodeDef[] = [
      { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
      { id: 'b', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
      { id: 'c', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
    ];
    expect(await check(graph([null, 3], [...branches, { id: 'sum', op: 'add', inputs: ['a', 'b'], attrs: {} }]), x2(3))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 3], [...branches, { id: 'sum', op: 'add', inputs: ['a', 'b', 'c'], attrs: {} }]), x2(3))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 3], [...branches, { id: 'cat', op: 'concat', inputs: ['a', 'b', 'c'], attrs: {} }]), x2(3))).toBeLessThanOrEqual(TOLERANCE);
    const seq: NodeDef[] = [
      { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
      { id: 'b', op: 'slice', inputs: ['x'], attrs: { begin: [1, 0], size: [2, -1] } },
      { id: 'cat', op: 'concat', inputs: ['x', 'b'], attrs: { axis: 1 } },
    ];
    expect(await check(graph([null, 3, 4], seq, ['cat']), randomInput([2, 3, 4], 9))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('flatten (NHWC order), reshape (batch kept), slice, dropout (identity at inference)', async () => {
    expect(await check(graph([null, 3, 2, 4], [{ id: 'f', op: 'flatten', inputs: ['x'], attrs: {} }]), x4(3, 2, 4))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 3, 2, 4], [{ id: 'r', op: 'reshape', inputs: ['x'], attrs: { shape: [4, -1] } }]), x4(3, 2, 4))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 5, 6, 3], [{ id: 's', op: 'slice', inputs: ['x'], attrs: { begin: [1, 2, 0], size: [3, -1, 2] } }]), x4(5, 6, 3))).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(graph([null, 6], [{ id: 'd', op: 'dropout', inputs: ['x'], attrs: { rate: 0.5 } }]), x2(6))).toBeLessThanOrEqual(TOLERANCE);
  });

  it('embedding (Gather of int32 ids) and positionEmbedding', async () => {
    const g = graph([null, 6], [
      { id: 'embed', op: 'embedding', inputs: ['x'], attrs: { vocabSize: 11, dim: 4 } },
      { id: 'pos', op: 'positionEmbedding', inputs: ['embed'], attrs: { maxLength: 9 } },
    ], undefined, 'int32');
    const ids = tf.tensor2d([[0, 1, 2, 3, 10, 5], [9, 9, 4, 0, 7, 6]], [2, 6], 'int32');
    expect(await check(g, ids)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('multiHeadAttention: causal and not, with and without biases', async () => {
    for (const attrs of [{ numHeads: 2, headDim: 3, causal: true }, { numHeads: 3, headDim: 2 }, { numHeads: 1, headDim: 4, causal: true, useBias: false }]) {
      const g = graph([null, 5, 6], [{ id: 'attn', op: 'multiHeadAttention', inputs: ['x'], attrs }]);
      expect(await check(g, randomInput([2, 5, 6], 11, 2))).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('a sequence length known only at run time (causal mask and positions built in the graph)', async () => {
    const g = graph([null, null], [
      { id: 'embed', op: 'embedding', inputs: ['x'], attrs: { vocabSize: 7, dim: 6 } },
      { id: 'pos', op: 'positionEmbedding', inputs: ['embed'], attrs: { maxLength: 9 } },
      { id: 'attn', op: 'multiHeadAttention', inputs: ['pos'], attrs: { numHeads: 2, headDim: 3, causal: true } },
    ], undefined, 'int32');
    const ids = tf.tensor2d([[1, 2, 3, 4, 5], [6, 0, 1, 2, 3]], [2, 5], 'int32');
    expect(await check(g, ids)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('opsets 17 to 21 and a fixed batch size export the same function', async () => {
    const g = graph([null, 4, 4, 2], [
      { id: 'c', op: 'conv2d', inputs: ['x'], attrs: { filters: 3, kernelSize: 2 } },
      { id: 'f', op: 'flatten', inputs: ['c'], attrs: {} },
      { id: 'ln', op: 'layerNorm', inputs: ['f'], attrs: {} },
      { id: 'g', op: 'gelu', inputs: ['ln'], attrs: {} },
    ]);
    for (const opset of [17, 18, 19, 20, 21]) expect(await check(g, x4(4, 4, 2), 1, { opset })).toBeLessThanOrEqual(TOLERANCE);
    expect(await check(g, x4(4, 4, 2), 1, { batch: 2 })).toBeLessThanOrEqual(TOLERANCE);
  });
});
