import { describe, it, expect, beforeAll } from 'vitest';
import { tf, isRsError } from '@rs/core';
import { install } from '@rs/backend-cpu';
import * as layers from '@tensorflow/tfjs-layers';
import { importLayersModel } from './index';
import { compareArrays, fixture, RELATIVE } from './import-harness';
import { randomInput } from './test-harness';

beforeAll(async () => {
  await install();
});

function files(name: string) {
  const json = JSON.parse(new TextDecoder().decode(fixture(`${name}.json`)));
  return { json, weights: fixture(`${name}.weights.bin`) };
}

/** tfjs-layers' own model from the same files, and its prediction. */
async function theirPredict(name: string, x: tf.Tensor) {
  const { json, weights } = files(name);
  const copy = weights.slice().buffer;
  const model = await layers.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: copy }));
  const y = model.predict(x) as tf.Tensor;
  const result = { data: y.dataSync() as Float32Array, dims: y.shape };
  y.dispose();
  model.layers.forEach((l) => l.dispose());
  return result;
}

describe('importLayersModel: models saved by tfjs-layers equal its own predict', () => {
  for (const [name, input] of [
    ['layers-mlp', () => randomInput([4, 20], 3)],
    ['layers-cnn', () => randomInput([3, 16, 16, 3], 4)],
    ['layers-text', () => tf.tensor(Array.from({ length: 36 }, (_, i) => (i * 7 + 3) % 40), [3, 12], 'int32')],
  ] as const) {
    it(name, async () => {
      const { json, weights } = files(name);
      const model = importLayersModel(json, weights);
      const x = input();
      const ours = model.apply(x);
      const result = compareArrays(ours, await theirPredict(name, x));
      tf.dispose([x, ours]);
      expect(result.maxAbs).toBeGreaterThan(1e-3);
      expect(result.relative).toBeLessThanOrEqual(RELATIVE);
      if (name === 'layers-cnn') {
        // The residual add couples c1 (through bn1 and r1) with c2 (through bn2); pw's channels are concatenated after them.
        const residual = model.group('c2');
        expect(residual.sources.sort()).toEqual(['c1', 'c2']);
        expect(residual.params.map((p) => p.param)).toEqual(expect.arrayContaining(['bn1/gamma', 'bn2/movingMean', 'dw/kernel', 'head/kernel']));
        expect(model.group('pw').size).toBe(8);
      }
      if (name === 'layers-text') expect(model.graph.nodes.map((n) => n.op)).toEqual(expect.arrayContaining(['embedding', 'layerNorm', 'add']));
      model.dispose();
    });
  }

  it('lists every layer it cannot read in one typed error', () => {
    const { json, weights } = files('layers-cnn');
    const edited = structuredClone(json);
    for (const layer of edited.modelTopology.config.layers) {
      if (layer.name === 'flat') layer.class_name = 'Reshape';
      if (layer.name === 'gap') layer.config.data_format = 'channels_first';
    }
    const tensors = tf.memory().numTensors;
    let error: unknown;
    try {
      importLayersModel(edited, weights);
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'UNSUPPORTED_IMPORT')).toBe(true);
    const problems = (error as { details: { problems: { node: string; opType: string }[] } }).details.problems;
    expect(problems.map((p) => [p.node, p.opType])).toEqual([['flat', 'Reshape'], ['gap', 'GlobalAveragePooling2D']]);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(() => importLayersModel(json, weights.slice(0, 100))).toThrow(expect.objectContaining({ code: 'IO_TRUNCATED' }));
  });
});
