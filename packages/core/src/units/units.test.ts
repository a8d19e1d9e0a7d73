import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { Model } from '../model';
import type { GraphDef } from '../ir/types';
import { lenet300100, lenet5, charTransformer } from '../models/builders';

beforeAll(useCpu);

const members = (model: Model, id: string) =>
  model
    .group(id)
    .params.map((p) => `${p.param}#${p.axis}:${p.role}${p.offset ? `@${p.offset}` : ''}${p.outer.length ? `x${p.outer.map(([c, s]) => `${c}/${s}`).join(',')}` : ''}${p.inner > 1 ? `*${p.inner}` : ''}`)
    .sort();

describe('unit groups', () => {
  it('dense chain: a layer\'s units are its kernel columns, its bias, and the next kernel\'s rows', () => {
    const model = Model.create(lenet300100(), { seed: 0 });
    expect(members(model, 'fc1')).toEqual(['fc1/bias#0:out', 'fc1/kernel#1:out', 'fc2/kernel#0:in']);
    expect(model.group('relu1')).toBe(model.group('fc1'));
    expect(model.group('fc1').size).toBe(300);
    expect(model.group('fc3').frozen?.[0]).toMatch(/graph output/);
    expect(model.group('input:x').frozen?.[0]).toMatch(/graph input/);
    model.dispose();
  });

  it('residual add couples both branches into one group', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
      nodes: [
        { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 5 } },
        { id: 'h', op: 'dense', inputs: ['a'], attrs: { units: 7 } },
        { id: 'r', op: 'relu', inputs: ['h'], attrs: {} },
        { id: 'b', op: 'dense', inputs: ['r'], attrs: { units: 5 } },
        { id: 'sum', op: 'add', inputs: ['a', 'b'], attrs: {} },
        { id: 'out', op: 'dense', inputs: ['sum'], attrs: { units: 2 } },
      ],
      outputs: ['out'],
    };
    const model = Model.create(graph, { seed: 0 });
    const g = model.group('a');
    expect(model.group('b')).toBe(g);
    expect(g.sources.sort()).toEqual(['a', 'b']);
    expect(members(model, 'a')).toEqual(['a/bias#0:out', 'a/kernel#1:out', 'b/bias#0:out', 'b/kernel#1:out', 'h/kernel#0:in', 'out/kernel#0:in']);
    const x = tf.randomNormal([3, 6], 0, 1, 'float32', 1);
    const before = model.apply(x);
    model.edit((tx) => tx.insertUnits('a', 2));
    expect(model.param('b/kernel').value.shape).toEqual([7, 7]);
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    model.edit((tx) => tx.removeUnits('a', [0, 6]));
    expect(model.graph.nodes.find((n) => n.id === 'b')?.attrs.units).toBe(5);
    model.dispose();
  });

  it('concat maps each input\'s units to its index range', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
      nodes: [
        { id: 'p', op: 'dense', inputs: ['x'], attrs: { units: 3 } },
        { id: 'q', op: 'dense', inputs: ['x'], attrs: { units: 5 } },
        { id: 'cat', op: 'concat', inputs: ['p', 'q'], attrs: { axis: -1 } },
        { id: 'out', op: 'dense', inputs: ['cat'], attrs: { units: 2 } },
      ],
      outputs: ['out'],
    };
    const model = Model.create(graph, { seed: 0 });
    expect(members(model, 'q')).toContain('out/kernel#0:in@3');
    const x = tf.randomNormal([3, 4], 0, 1, 'float32', 1);
    const before = model.apply(x);
    model.edit((tx) => tx.insertUnits('p', 2, { at: 1 }));
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    // The rows of q now start at 5.
    expect(members(model, 'q')).toContain('out/kernel#0:in@5');
    const w = model.param('out/kernel').value.arraySync() as number[][];
    expect(w[1]).toEqual([0, 0]);
    expect(w[2]).toEqual([0, 0]);
    model.dispose();
  });

  it('conv -> flatten -> dense: a channel maps to its block of flattened features', () => {
    const model = Model.create(lenet5(), { seed: 0 });
    // conv2 output: 5x5x16 after pool2 -> 400 features; channel c -> features {p*16 + c}.
    expect(members(model, 'conv2')).toEqual(['conv2/bias#0:out', 'conv2/kernel#3:out', 'fc1/kernel#0:inx25/16']);
    expect(members(model, 'conv1')).toEqual(['conv1/bias#0:out', 'conv1/kernel#3:out', 'conv2/kernel#2:in']);
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 3);
    const fc1 = model.param('fc1/kernel').value.arraySync() as number[][];
    const before = model.apply(x);
    model.edit((tx) => tx.removeUnits('conv2', [3]));
    const after = model.param('fc1/kernel').value.arraySync() as number[][];
    expect(after).toHaveLength(375);
    // Row 15*p + c of the new kernel is row 16*p + (c < 3 ? c : c + 1) of the old one.
    expect(after[15 * 7 + 3]).toEqual(fc1[16 * 7 + 4]);
    expect(after[15 * 24 + 2]).toEqual(fc1[16 * 24 + 2]);
    model.edit((tx) => tx.insertUnits('conv2', 2, { at: 0 }));
    expect(model.param('fc1/kernel').value.shape).toEqual([425, 120]);
    expect(model.graph.nodes.find((n) => n.id === 'conv2')?.attrs.filters).toBe(17);
    model.edit((tx) => tx.permuteUnits('conv2', [...Array(17).keys()].reverse()));
    const after2 = model.apply(x);
    expect(after2.shape).toEqual(before.shape);
    model.dispose();
  });

  it('layerNorm couples gamma and beta to the features it normalises', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
      nodes: [
        { id: 'h', op: 'dense', inputs: ['x'], attrs: { units: 6 } },
        { id: 'ln', op: 'layerNorm', inputs: ['h'], attrs: {} },
        { id: 'out', op: 'dense', inputs: ['ln'], attrs: { units: 2 } },
      ],
      outputs: ['out'],
    };
    const model = Model.create(graph, { seed: 0 });
    expect(members(model, 'h')).toEqual(['h/bias#0:out', 'h/kernel#1:out', 'ln/beta#0:in', 'ln/gamma#0:in', 'out/kernel#0:in']);
    // Inserting units changes what the norm computes, so it must be asked for (units/normalizes.test.ts).
    expect(() => model.edit((tx) => tx.insertUnits('h', 2))).toThrow(/FUNCTION_NOT_PRESERVED/);
    model.edit((tx) => tx.insertUnits('h', 2, { allowFunctionChange: true }));
    // New norm parameters start at their initializers: gamma 1, beta 0.
    expect(Array.from(model.param('ln/gamma').value.dataSync()).slice(6)).toEqual([1, 1]);
    expect(Array.from(model.param('ln/beta').value.dataSync()).slice(6)).toEqual([0, 0]);
    model.edit((tx) => tx.removeUnits('h', [0, 1, 2]));
    expect(model.param('ln/gamma').value.shape).toEqual([5]);
    model.dispose();
  });

  it('attention heads are units: removing a head shrinks q, k, v by headDim and o by headDim rows', () => {
    const model = Model.create(charTransformer({ vocabSize: 11, context: 8, dim: 16, heads: 4, layers: 1 }), { seed: 0 });
    expect(members(model, 'block0.attn:heads')).toEqual([
      'block0.attn/bk#0:out*4',
      'block0.attn/bq#0:out*4',
      'block0.attn/bv#0:out*4',
      'block0.attn/wk#1:out*4',
      'block0.attn/wo#0:in*4',
      'block0.attn/wq#1:out*4',
      'block0.attn/wv#1:out*4',
    ]);
    // The model width (d_model) is one group across the residual stream.
    const width = model.group('embed');
    expect(width.sources).toEqual(expect.arrayContaining(['embed', 'block0.attn', 'block0.ffn2']));
    const x = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32');
    const before = model.apply(x);
    model.edit((tx) => tx.permuteUnits('block0.attn:heads', [2, 0, 3, 1]));
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    model.edit((tx) => tx.removeUnits('block0.attn:heads', [1]));
    expect(model.param('block0.attn/wq').value.shape).toEqual([16, 12]);
    expect(model.param('block0.attn/wo').value.shape).toEqual([12, 16]);
    expect(model.graph.nodes.find((n) => n.id === 'block0.attn')?.attrs.numHeads).toBe(3);
    expect(model.apply(x).shape).toEqual([1, 8, 11]);
    model.dispose();
  });
});
