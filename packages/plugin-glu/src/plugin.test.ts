import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, fit, tf, isRsError, type GraphDef } from '@rs/core';
import { install } from "@rs/backend-cpu";
import { gatedLinear, register, registerGlu } from './index';

beforeAll(async () => {
  await install();
});

const graph: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'glu', op: 'gatedLinear', inputs: ['x'], attrs: { units: 8 } },
    { id: 'out', op: 'dense', inputs: ['glu'], attrs: { units: 3 } },
  ],
  outputs: ['out'],
};

const diff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('a third-party op plugin', () => {
  it('is unknown until registered; registering it again does nothing, another op under its name is an error', () => {
    expect(() => Model.create(graph, { registry: createOpRegistry() })).toThrow(/UNKNOWN_OP.*gatedLinear/);
    const registry = registerGlu(createOpRegistry());
    expect(register(registry)).toBe(registry);
    expect(registry.get('gatedLinear')).toBe(gatedLinear);
    expect(() => registry.register({ ...gatedLinear })).toThrow(/DUPLICATE_OP/);
  });

  it('gets unit groups from its declaration and is pruned and grown by core edits', async () => {
    const registry = registerGlu(createOpRegistry());
    const model = Model.create(graph, { registry, seed: 3 });
    const group = model.group('glu');
    expect(group.params.map((p) => `${p.param}#${p.axis}`).sort()).toEqual(['glu/b#0', 'glu/c#0', 'glu/v#1', 'glu/w#1', 'out/kernel#0']);
    const x = tf.randomNormal([4, 6], 0, 1, 'float32', 1);
    const before = model.apply(x);
    model.edit((tx) => tx.insertUnits('glu', 4), { technique: 'grow', reason: 'plugin test' });
    expect(model.graph.nodes[0].attrs.units).toBe(12);
    expect(diff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);

    // Removing units equals zeroing what produces them (w and b columns: the GLU output is 0).
    const masked = Model.create(graph, { registry, seed: 3 });
    masked.edit((tx) => {
      const keep = tf.tensor1d([1, 0, 1, 1, 1, 1, 0, 1]);
      tx.setMask('glu/w', tf.mul(tf.ones([6, 8]), keep));
      tx.setMask('glu/b', keep);
    });
    const pruned = Model.create(graph, { registry, seed: 3 });
    pruned.edit((tx) => tx.removeUnits('glu', [1, 6]), { technique: 'prune', reason: 'plugin test' });
    expect(pruned.param('glu/v').value.shape).toEqual([6, 6]);
    expect(diff(masked.apply(x), pruned.apply(x))).toBeLessThanOrEqual(1e-5);
    expect(pruned.journal[0].params.after).toBeLessThan(pruned.journal[0].params.before);

    // And it trains.
    const y = tf.tensor1d([0, 1, 2, 1], 'int32');
    const history = await fit(pruned, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 30, batchSize: 4 });
    expect(history.losses[history.losses.length - 1]).toBeLessThan(history.losses[0]);
    expect(() => pruned.edit((tx) => tx.removeUnits('glu', [0, 1, 2, 3, 4, 5]))).toThrow(/REMOVE_ALL_UNITS/);
    try {
      pruned.edit((tx) => tx.removeUnits('glu', [6]));
    } catch (e) {
      expect(isRsError(e, 'UNIT_INDEX_OUT_OF_RANGE')).toBe(true);
    }
    for (const m of [model, masked, pruned]) m.dispose();
  });
});
