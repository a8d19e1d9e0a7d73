// A technique written by following docs/add-a-technique.md alone (./technique-example: it imports
// @rs/core and @rs/core/extend only), used through the orchestration layers without any change to
// core for it: pruned by its own score name through @rs/prune, reported by @rs/report, exported
// by @rs/onnx and checked in onnxruntime-node.
import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll } from 'vitest';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { Model, adam, createOpRegistry, isRsError, tf, type GraphDef } from '@rs/core';
import { leakedTensors, leakOnThrow } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { defaultScores, pruneUnits } from '@rs/prune';
import { toOnnx } from '@rs/onnx';
import { collectReport } from '../src/index';
import { register, setScales, trainScales, type ScaleStatsRow } from './technique-example/src/index';

beforeAll(async () => {
  await install();
});

function graph(): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
      { id: 'act1', op: 'scaledRelu', inputs: ['fc1'], attrs: {} },
      { id: 'out', op: 'dense', inputs: ['act1'], attrs: { units: 3 } },
    ],
    outputs: ['out'],
  };
}

const scales = [0.5, -0.05, 2, 0.01, -1, 0.3, 0.02, 1.5];

describe('a technique package written from docs/add-a-technique.md', () => {
  it('imports @rs/core only (the dependency rule of a technique)', () => {
    const source = readFileSync(new URL('./technique-example/src/index.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
    expect(new Set(imports)).toEqual(new Set(['@rs/core', '@rs/core/extend']));
    const pkg = JSON.parse(readFileSync(new URL('./technique-example/package.json', import.meta.url), 'utf8'));
    expect(pkg.rs).toEqual({ kind: 'technique' });
    expect(Object.keys(pkg.peerDependencies)).toEqual(['@rs/core']);
  });

  it('is pruned by its own score, reported and exported through the registry, with ONNX equal to 1e-4', async () => {
    expect(() => Model.create(graph())).toThrow(/Unknown op 'scaledRelu'/);
    const model = Model.create(graph(), { registry: register(createOpRegistry()), seed: 7 });
    const x = tf.randomUniform([16, 6], -1, 1, 'float32', 3);
    const y = tf.randomUniform([16, 3], -1, 1, 'float32', 4);

    // Training through core's one step moves the scales and nothing else.
    const before = model.param('fc1/kernel').value.dataSync().slice();
    const optimizer = adam({ learningRate: 0.05 });
    const mse = ([out]: tf.Tensor[]) => tf.losses.meanSquaredError(y, out);
    trainScales(model, optimizer, x, mse); // makes Adam's two slots for the scales
    const leaked = await leakedTensors(() => {
      for (let i = 0; i < 3; i++) trainScales(model, optimizer, x, mse);
    });
    expect(leaked).toBe(0);
    expect([...model.param('act1/scale').value.dataSync()].some((v) => Math.abs(v - 1) > 1e-3)).toBe(true);
    expect(model.param('fc1/kernel').value.dataSync()).toEqual(before);

    // A structural edit: one journaled transaction; a bad value changes nothing and leaks nothing.
    setScales(model, 'act1', scales);
    expect(model.journal.at(-1)).toMatchObject({ technique: 'scaledRelu', reason: 'set the 8 scales of act1' });
    const entries = model.journal.length;
    const bad = await leakOnThrow(() => setScales(model, 'act1', [1, 2]));
    expect(isRsError(bad.error, 'SHAPE_MISMATCH')).toBe(true);
    expect(bad.leaked).toBe(0);
    expect(model.journal.length).toBe(entries);
    expect([...model.param('act1/scale').value.dataSync()]).toEqual([...Float32Array.from(scales)]);

    // Pruning by name: 'absScale' is not one of prune's scores, the model's registry provides it.
    expect(defaultScores.has('absScale')).toBe(false);
    const { removed } = pruneUnits(model, { fraction: 0.5, score: 'absScale', groups: ['fc1'] });
    expect(removed.fc1).toEqual([1, 3, 5, 6]);
    expect(model.group('fc1').size).toBe(4);
    expect([...model.param('act1/scale').value.dataSync()]).toEqual([...Float32Array.from([0.5, 2, -1, 1.5])]);
    expect(model.journal.at(-1)).toMatchObject({ technique: 'prune', details: { score: 'absScale' } });

    // The report finds the technique's section through the registry.
    let report: ReturnType<typeof collectReport> | undefined;
    expect(await leakedTensors(() => (report = collectReport(model)))).toBe(0);
    const stats = report?.sections?.scaleStats as { rows: ScaleStatsRow[] };
    expect(stats.rows).toHaveLength(1);
    expect(stats.rows[0]).toMatchObject({ node: 'act1', units: 4, min: -1, max: 2 });
    expect(stats.rows[0].meanAbs).toBeCloseTo(1.25, 6);
    expect(report?.journal.map((e) => e.technique)).toEqual(['scaledRelu', 'prune']);

    // ONNX export uses the provided lowering; onnxruntime-node agrees with core to 1e-4.
    const bytes = toOnnx(model);
    const session = await InferenceSession.create(bytes);
    try {
      const result = await session.run({ x: new OrtTensor('float32', Float32Array.from(x.dataSync()), x.shape) });
      const theirs = result.out;
      expect([...theirs.dims]).toEqual([16, 3]);
      const ours = model.run([x]);
      const data = ours.outputs[0].dataSync();
      let maxDiff = 0;
      data.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - (theirs.data as Float32Array)[i]))));
      expect(maxDiff).toBeLessThan(1e-4);
      expect(Math.max(...data.map(Math.abs))).toBeGreaterThan(1e-3);
      tf.dispose([...ours.outputs, ...ours.losses.values(), ...ours.metrics.values()]);
    } finally {
      await session.release();
    }
    tf.dispose([x, y]);
    model.dispose();
  });
});
