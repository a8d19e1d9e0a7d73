import { describe, it, expect, beforeAll } from 'vitest';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { tf, type Model } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { importOnnx, toOnnx } from './index';
import { compareArrays, fixture, onnxGraphProblems, RELATIVE } from './import-harness';

beforeAll(async () => {
  await install();
});

/** Token ids [3, 7] in [0, 50), fixed. */
const ids = Array.from({ length: 21 }, (_, i) => (i * 17 + 5) % 50);

async function ortLogits(bytes: Uint8Array, int64: boolean) {
  const session = await InferenceSession.create(bytes);
  try {
    const feed = int64 ? new OrtTensor('int64', BigInt64Array.from(ids.map(BigInt)), [3, 7]) : new OrtTensor('int32', Int32Array.from(ids), [3, 7]);
    const out = await session.run({ tokens: feed });
    const value = Object.values(out)[0];
    return { data: Float32Array.from(value.data as Float32Array), dims: [...value.dims] };
  } finally {
    await session.release();
  }
}

function ours(model: Model) {
  return tf.tidy(() => model.apply(tf.tensor(ids, [3, 7], 'int32')));
}

describe('importOnnx: PyTorch nn.TransformerEncoder (2 layers, 4 heads)', () => {
  it('imports as embedding + multiHeadAttention + layerNorm + dense blocks, equal to ONNX Runtime; half of the heads pruned, exported, still equal', async () => {
    const bytes = fixture('transformer.onnx');
    const model = importOnnx(bytes);
    const ops = model.graph.nodes.map((n) => n.op);
    expect(ops.filter((op) => op === 'multiHeadAttention')).toHaveLength(2);
    expect(ops.filter((op) => op === 'layerNorm')).toHaveLength(4);
    const y = ours(model);
    const imported = compareArrays(y, await ortLogits(bytes, true));
    y.dispose();
    expect(imported.maxAbs).toBeGreaterThan(1e-3);
    expect(imported.relative).toBeLessThanOrEqual(RELATIVE);

    const heads = model.groups().filter((g) => g.id.endsWith(':heads'));
    expect(heads.map((g) => g.size)).toEqual([4, 4]);
    const tensors = tf.memory().numTensors;
    model.edit((tx) => {
      for (const g of heads) tx.removeUnits(g.id, [1, 3]);
    });
    expect(tf.memory().numTensors).toBe(tensors);
    const attention = model.graph.nodes.filter((n) => n.op === 'multiHeadAttention');
    expect(attention.map((n) => model.param(`${n.id}/wq`).value.shape)).toEqual([[32, 16], [32, 16]]);
    const exported = toOnnx(model);
    expect(onnxGraphProblems(exported)).toEqual([]);
    const pruned = ours(model);
    const result = compareArrays(pruned, await ortLogits(exported, false));
    pruned.dispose();
    expect(result.maxAbs).toBeGreaterThan(1e-3);
    expect(result.relative).toBeLessThanOrEqual(RELATIVE);
    model.dispose();
  });
});
