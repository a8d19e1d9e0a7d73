import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { Model } from '../model';
import { randomGraph } from '../testing/random-graphs';
import { lenet300100 } from '../models/builders';
import { isRsError } from '../errors';
import { fit } from '../train/fit';
import type { UnitGroup } from '../units/analyze';
import { createRng } from '../rng';
import { saveToBuffer, loadFromBuffer } from '../io/model-io';

beforeAll(useCpu);

const editable = (m: Model): UnitGroup[] => m.groups().filter((g) => !g.frozen);

function withModel<T>(graph: ReturnType<typeof randomGraph>, seed: number, body: (m: Model, x: tf.Tensor) => T): T {
  const model = Model.create(graph, { seed });
  const x = tf.randomNormal([5, graph.inputs[0].shape[1] as number], 0, 1, 'float32', seed);
  try {
    return body(model, x);
  } finally {
    model.dispose();
    x.dispose();
  }
}

/** Masks every weight that produces the given units (their `out` members) and returns outputs. */
function maskedOutputs(model: Model, group: UnitGroup, units: number[], x: tf.Tensor): tf.Tensor {
  model.edit((tx) => {
    for (const member of group.params.filter((p) => p.role === 'out')) {
      const value = tx.param(member.param).value;
      const mask = tf.tidy(() => {
        const length = value.shape[member.axis];
        const keep = new Float32Array(length).fill(1);
        for (const u of units) for (let i = 0; i < member.inner; i++) keep[member.offset + u * member.inner + i] = 0;
        const shape = value.shape.map((_, a) => (a === member.axis ? length : 1));
        return tf.mul(tf.onesLike(value), tf.tensor(keep, shape));
      });
      tx.setMask(member.param, mask);
      mask.dispose();
    }
  });
  return model.apply(x);
}

describe('edit properties (fast-check, seeded)', () => {
  const seeds = fc.integer({ min: 1, max: 1_000_000 });

  it('random graphs under random edit sequences stay valid', () => {
    fc.assert(
      fc.property(seeds, fc.array(fc.tuple(fc.nat(3), fc.nat(1000), fc.nat(1000)), { minLength: 1, maxLength: 6 }), (seed, edits) =>
        withModel(randomGraph(seed, { norms: true }), seed, (model, x) => {
          const outShape = model.apply(x).shape;
          for (const [kind, a, b] of edits) {
            const groups = editable(model);
            if (groups.length === 0) break;
            const group = groups[a % groups.length];
            const rng = createRng(b);
            model.edit((tx) => {
              if (kind === 0 && group.size > 1) {
                const count = 1 + (b % (group.size - 1));
                const picked = [...Array(group.size).keys()].sort(() => rng.next() - 0.5).slice(0, count);
                tx.removeUnits(group.id, picked);
              } else if (kind === 1) {
                tx.insertUnits(group.id, 1 + (b % 3), { at: b % (group.size + 1), allowFunctionChange: true });
              } else if (kind === 2) {
                tx.permuteUnits(group.id, [...Array(group.size).keys()].sort(() => rng.next() - 0.5));
              } else {
                const width = group.size;
                const after = group.activations[0].node;
                if (model.validated.infos.get(after)?.shape.length !== 2 || group.activations[0].offset !== 0) return;
                tx.insertNode({ id: `id${model.journal.length}`, op: 'dense', inputs: [after], attrs: { units: width } }, { after });
              }
            });
            const y = model.apply(x);
            expect(y.shape).toEqual(outShape);
            expect(Number.isFinite(tf.sum(y).dataSync()[0])).toBe(true);
            y.dispose();
            for (const g of model.groups()) {
              for (const p of g.params) {
                const shape = model.param(p.param).value.shape;
                expect(shape[p.axis]).toBeGreaterThanOrEqual(p.offset + g.size * p.inner);
              }
            }
          }
        }),
      ),
      { numRuns: 40, seed: 20261126 },
    );
  });

  it('permuteUnits preserves outputs to 1e-5', () => {
    fc.assert(
      fc.property(seeds, fc.nat(1000), (seed, pick) =>
        withModel(randomGraph(seed, { norms: true }), seed, (model, x) => {
          const groups = editable(model);
          const group = groups[pick % groups.length];
          const before = model.apply(x);
          const rng = createRng(pick);
          model.edit((tx) => tx.permuteUnits(group.id, [...Array(group.size).keys()].sort(() => rng.next() - 0.5)));
          const after = model.apply(x);
          expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
          tf.dispose([before, after]);
        }),
      ),
      { numRuns: 40, seed: 7 },
    );
  });

  it('insertUnits with zero outgoing weights preserves outputs to 1e-5', () => {
    fc.assert(
      fc.property(seeds, fc.nat(1000), fc.integer({ min: 1, max: 4 }), (seed, pick, count) =>
        withModel(randomGraph(seed, { norms: false }), seed, (model, x) => {
          const groups = editable(model);
          const group = groups[pick % groups.length];
          const before = model.apply(x);
          model.edit((tx) => tx.insertUnits(group.id, count, { at: pick % (group.size + 1) }));
          expect(model.group(group.id).size).toBe(group.size + count);
          const after = model.apply(x);
          expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
          tf.dispose([before, after]);
        }),
      ),
      { numRuns: 40, seed: 11 },
    );
  });

  it('identity insertNode preserves outputs to 1e-5', () => {
    fc.assert(
      fc.property(seeds, fc.nat(1000), (seed, pick) =>
        withModel(randomGraph(seed, { norms: true }), seed, (model, x) => {
          const graph = model.graph;
          const candidates = graph.nodes.filter((n) => !graph.outputs.includes(n.id));
          const after = candidates[pick % candidates.length];
          const width = model.validated.infos.get(after.id)?.shape[1] as number;
          const before = model.apply(x);
          const eye = tf.eye(width);
          const zeros = tf.zeros([width]);
          model.edit((tx) => tx.insertNode({ id: 'inserted', op: 'dense', inputs: [after.id], attrs: { units: width } }, { after: after.id, params: { kernel: eye, bias: zeros } }));
          const after2 = model.apply(x);
          expect(maxAbsDiff(before, after2)).toBeLessThanOrEqual(1e-5);
          tf.dispose([before, after2, eye, zeros]);
        }),
      ),
      { numRuns: 30, seed: 3 },
    );
  });

  it('removeUnits equals masking the same units, to 1e-5', () => {
    fc.assert(
      fc.property(seeds, fc.nat(1000), (seed, pick) => {
        const graph = randomGraph(seed, { norms: false, activations: ['relu', 'tanh'] });
        return withModel(graph, seed, (model, x) => {
          const groups = editable(model).filter((g) => g.size > 1);
          if (groups.length === 0) return;
          const group = groups[pick % groups.length];
          const rng = createRng(pick);
          const units = [...Array(group.size).keys()].filter(() => rng.next() < 0.5).slice(0, group.size - 1);
          if (units.length === 0) units.push(0);
          const twin = Model.create(graph, { seed });
          const masked = maskedOutputs(twin, group, units, x);
          model.edit((tx) => tx.removeUnits(group.id, units));
          const removed = model.apply(x);
          expect(maxAbsDiff(masked, removed)).toBeLessThanOrEqual(1e-5);
          tf.dispose([masked, removed]);
          twin.dispose();
        });
      }),
      { numRuns: 40, seed: 5 },
    );
  });
});

describe('transactions', () => {
  it('an error in the middle of an edit leaves graph, weights, optimizer state, journal and tensor count identical', async () => {
    const model = Model.create(lenet300100({ hidden: [16, 8] }), { seed: 1 });
    const data = { x: tf.randomNormal([32, 784], 0, 1, 'float32', 1), y: tf.randomUniformInt([32], 0, 10, 2) as tf.Tensor };
    await fit(model, data, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    model.edit((tx) => tx.removeUnits('fc1', [0]), { technique: 'test', reason: 'first edit' });
    const snapshot = () => ({
      graph: JSON.stringify(model.graph),
      params: model.paramKeys().map((k) => [k, Array.from(model.param(k).value.dataSync()), model.param(k).trainable]),
      slots: [...model.internalState.slots].map(([k, s]) => [k, [...s].map(([n, t]) => [n, Array.from(t.dataSync())])]),
      journal: JSON.stringify(model.journal),
    });
    const before = snapshot();
    const tensors = tf.memory().numTensors;
    expect(() =>
      model.edit((tx) => {
        tx.removeUnits('fc1', [1, 2]);
        tx.insertUnits('fc2', 3);
        tx.setTrainable('fc3', false);
        tf.tidy(() => {
          tx.setMask('fc2/kernel', tf.ones(tx.param('fc2/kernel').value.shape));
          tx.setSlot('fc1/kernel', 'v', tf.onesLike(tx.paramSlots('fc1/kernel').get('v') as tf.Tensor));
        });
        throw new Error('injected');
      }),
    ).toThrow('injected');
    expect(snapshot()).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    // setSlot with the wrong shape is a typed error and changes nothing.
    expect(() => model.edit((tx) => tf.tidy(() => void tx.setSlot('fc1/kernel', 'm', tf.zeros([2, 2]))))).toThrow(/SHAPE_MISMATCH/);
    expect(snapshot()).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    // A failing primitive (validation error) rolls back the same way.
    expect(() => model.edit((tx) => { tx.insertUnits('fc1', 2); tx.removeUnits('fc2', [99]); })).toThrow(/UNIT_INDEX_OUT_OF_RANGE/);
    expect(snapshot()).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('journals what changed, who asked, and parameters/FLOPs before and after', () => {
    const model = Model.create(lenet300100(), { seed: 0 });
    const entry = model.edit((tx) => tx.removeUnits('fc1', [0, 1, 2]), { technique: 'prune', reason: 'smallest L1' });
    expect(entry).toMatchObject({ seq: 1, technique: 'prune', reason: 'smallest L1', params: { before: 266610, after: 266610 - 3 * 785 - 3 * 100 } });
    expect(entry.flops.after).toBeLessThan(entry.flops.before);
    expect(entry.changes[0]).toMatchObject({ kind: 'removeUnits', target: 'fc1', size: { before: 300, after: 297 } });
    expect(model.graph.nodes.find((n) => n.id === 'fc1')?.attrs.units).toBe(297);
    model.dispose();
  });

  it('rejects bad edits with typed errors', () => {
    const model = Model.create(lenet300100({ hidden: [4, 3] }), { seed: 0 });
    const code = (f: () => void): string | undefined => {
      try {
        f();
      } catch (e) {
        return isRsError(e) ? e.code : String(e);
      }
      return undefined;
    };
    expect(code(() => model.edit((tx) => tx.removeUnits('fc1', [0, 1, 2, 3])))).toBe('REMOVE_ALL_UNITS');
    expect(code(() => model.edit((tx) => tx.removeUnits('fc1', [4])))).toBe('UNIT_INDEX_OUT_OF_RANGE');
    expect(code(() => model.edit((tx) => tx.removeUnits('fc1', [-1])))).toBe('UNIT_INDEX_OUT_OF_RANGE');
    expect(code(() => model.edit((tx) => tx.removeUnits('fc1', [1, 1])))).toBe('DUPLICATE_UNIT_INDEX');
    expect(code(() => model.edit((tx) => tx.removeUnits('fc3', [0])))).toBe('FROZEN_GROUP');
    expect(code(() => model.edit((tx) => tx.removeUnits('nope', [0])))).toBe('UNKNOWN_GROUP');
    expect(code(() => model.edit((tx) => tx.permuteUnits('fc1', [0, 0, 1, 2])))).toBe('INVALID_PERMUTATION');
    expect(code(() => model.edit((tx) => tx.removeNode('fc2')))).toBe('SHAPE_MISMATCH');
    expect(code(() => model.edit((tx) => tx.insertNode({ id: 'fc1', op: 'relu', inputs: ['x'], attrs: {} })))).toBe('DUPLICATE_ID');
    expect(code(() => model.edit((tx) => tx.insertNode({ id: 'z', op: 'wat', inputs: ['x'], attrs: {} })))).toBe('UNKNOWN_OP');
    // No optimizer has stepped this model: there is no slot to replace.
    expect(code(() => model.edit((tx) => tf.tidy(() => void tx.setSlot('fc1/kernel', 'm', tf.zeros([784, 4]))))) ).toBe('INVALID_EDIT');
    expect(code(() => model.edit((tx) => void tx.paramSlots('nope/kernel')))).toBe('UNKNOWN_PARAM');
    expect(model.journal).toHaveLength(0);
    model.dispose();
  });

  it('removeNode with bypass and replaceNode keep the graph valid', () => {
    const model = Model.create(lenet300100({ hidden: [6, 6] }), { seed: 0 });
    model.edit((tx) => tx.removeNode('relu1'));
    expect(model.graph.nodes.find((n) => n.id === 'fc2')?.inputs).toEqual(['fc1']);
    model.edit((tx) => tx.replaceNode('relu2', { op: 'tanh', inputs: ['fc2'], attrs: {} }));
    expect(model.graph.nodes.find((n) => n.id === 'relu2')?.op).toBe('tanh');
    const y = model.apply(tf.ones([1, 784]));
    expect(y.shape).toEqual([1, 10]);
    y.dispose();
    model.dispose();
  });

  it('node-level changes record what they found (node, rewired readers, outputs), and the records survive save/load', () => {
    const model = Model.create(lenet300100({ hidden: [6, 5] }), { seed: 0 });
    const entry = model.edit((tx) =>
      tx
        .insertNode({ id: 'extra', op: 'tanh', inputs: ['relu1'], attrs: {} }, { after: 'relu1' })
        .removeNode('relu2')
        .replaceNode('fc3', { id: 'head', op: 'dense', inputs: ['fc2'], attrs: { units: 10 } })
        .setOutputs(['head', 'fc2']),
    );
    const [insert, remove, replace, outputs] = entry.changes;
    expect(insert.before).toEqual({ rewired: [{ id: 'fc2', inputs: ['relu1'] }] });
    expect(remove.before).toEqual({ node: { id: 'relu2', op: 'relu', inputs: ['fc2'], shape: [null, 5], previous: 'fc2' }, rewired: [{ id: 'fc3', inputs: ['relu2'] }] });
    expect(replace.before).toEqual({ node: { id: 'fc3', op: 'dense', inputs: ['fc2'], shape: [null, 10], previous: 'fc2' }, replacement: 'head', outputs: ['fc3'] });
    expect(outputs.before).toEqual({ outputs: ['head'] });
    const loaded = loadFromBuffer(saveToBuffer(model));
    expect(loaded.journal[0].changes.map((c) => c.before)).toEqual(entry.changes.map((c) => c.before));
    loaded.dispose();
    model.dispose();
  });

  it('setOutputs adds an output (journaled); unknown ids are typed errors that change nothing', () => {
    const model = Model.create(lenet300100({ hidden: [8, 4] }), { seed: 0 });
    const x = tf.randomNormal([2, 784], 0, 1, 'float32', 3);
    const entry = model.edit((tx) => tx.setOutputs(['fc3', 'relu2']), { technique: 'test', reason: 'two outputs' });
    expect(entry.changes[0].kind).toBe('setOutputs');
    expect(model.graph.outputs).toEqual(['fc3', 'relu2']);
    const run = model.run(x);
    expect(run.outputs.map((t) => t.shape)).toEqual([[2, 10], [2, 4]]);
    for (const t of run.outputs) t.dispose();
    const tensors = tf.memory().numTensors;
    let error: unknown;
    try {
      model.edit((tx) => tx.setOutputs(['fc3', 'nope']));
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'UNKNOWN_NODE')).toBe(true);
    expect(model.graph.outputs).toEqual(['fc3', 'relu2']);
    expect(tf.memory().numTensors).toBe(tensors);
    x.dispose();
    model.dispose();
  });
  it('setMeta annotates the graph (journaled, saved, deleted with undefined); non-JSON values change nothing', () => {
    const model = Model.create(lenet300100({ hidden: [8, 4] }), { seed: 0 });
    const entry = model.edit((tx) => tx.setMeta('dynamic.exitPolicy', { rule: 'entropy', thresholds: [0.25] }), { technique: 'test', reason: 'policy' });
    expect(entry.changes[0]).toMatchObject({ kind: 'setMeta', target: 'dynamic.exitPolicy' });
    expect(model.graph.meta).toEqual({ 'dynamic.exitPolicy': { rule: 'entropy', thresholds: [0.25] } });
    const copy = loadFromBuffer(saveToBuffer(model));
    expect(copy.graph.meta).toEqual(model.graph.meta);
    copy.dispose();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let error: unknown;
    try {
      model.edit((tx) => tx.setMeta('bad', cyclic));
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect(model.journal).toHaveLength(1);
    model.edit((tx) => tx.setMeta('dynamic.exitPolicy', undefined));
    expect(model.graph.meta).toBeUndefined();
    expect(() => Model.create({ ...lenet300100(), meta: [] as unknown as Record<string, unknown> })).toThrow(/meta/);
    model.dispose();
  });
});
