// Ops that normalise across units (layerNorm, softmax over the feature axis, a plugin's RMS
// norm) declare it with `u.normalizes`; inserting units into such a group is refused unless the
// caller accepts the change of function.
import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { leakOnThrow } from '../testing';
import { Model } from '../model';
import { createOpRegistry } from '../ops/registry';
import type { OpSchema } from '../ops/schema';
import type { GraphDef } from '../ir/types';
import { isRsError } from '../errors';
import { charTransformer } from '../models/builders';

beforeAll(useCpu);

/** x -> dense a (6 units) -> `op` -> dense out: group 'a' passes through `op`. */
function through(op: string, attrs: Record<string, unknown> = {}): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
    nodes: [
      { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 6 } },
      { id: 'n', op, inputs: ['a'], attrs },
      { id: 'out', op: 'dense', inputs: ['n'], attrs: { units: 3 } },
    ],
    outputs: ['out'],
  };
}

/** The shapes and values of every parameter, to show that a refused edit changed nothing. */
function snapshot(model: Model): string {
  return JSON.stringify(model.paramKeys().map((k) => [k, model.param(k).value.shape, Array.from(model.param(k).value.dataSync())]));
}

/** RMS norm over the feature axis with a learned per-unit gain: a plugin op that declares it. */
const rmsNorm: OpSchema<{ epsilon?: number }> = {
  name: 'rmsNorm',
  arity: 1,
  infer: (_attrs, [x]) => ({ shape: [...x.shape], dtype: 'float32' }),
  params: (_attrs, [x]) => ({ gain: { shape: [x.shape[x.shape.length - 1] as number], init: { kind: 'ones' } } }),
  forward: ([x], { gain }, attrs) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), attrs.epsilon ?? 1e-6))), gain),
  units(u) {
    const l = u.input(0);
    u.consume(l, 'gain', 0);
    return u.normalizes(l, 'the root mean square is taken over them');
  },
};

describe('insertUnits into a group that an op normalises across', () => {
  const x = () => tf.randomNormal([5, 4], 0, 1, 'float32', 3);

  it('layerNorm: the group says why, insertUnits is refused with a typed error, nothing changes, no tensor leaks', async () => {
    const model = Model.create(through('layerNorm'), { seed: 1 });
    const group = model.group('a');
    expect(group.frozen).toBeUndefined();
    expect(group.insertChangesFunction).toEqual([expect.stringMatching(/node 'n' \(layerNorm\) normalises across these units/)]);
    const input = x();
    const before = model.apply(input);
    const state = snapshot(model);
    const { error, leaked } = await leakOnThrow(() => model.edit((tx) => tx.insertUnits('a', 2)));
    expect(leaked).toBe(0);
    expect(isRsError(error, 'FUNCTION_NOT_PRESERVED')).toBe(true);
    const e = error as { message: string; details: Record<string, unknown> };
    expect(e.message).toMatch(/'a'.*layerNorm.*allowFunctionChange: true/s);
    expect(e.details).toMatchObject({ group: 'a', reasons: group.insertChangesFunction });
    expect(snapshot(model)).toBe(state);
    expect(model.journal).toHaveLength(0);
    expect(maxAbsDiff(before, model.apply(input))).toBe(0);
    input.dispose();
    before.dispose();
    model.dispose();
  });

  it('layerNorm: with allowFunctionChange the insertion proceeds, and the function does change', () => {
    const model = Model.create(through('layerNorm'), { seed: 1 });
    const input = x();
    const before = model.apply(input);
    model.edit((tx) => tx.insertUnits('a', 2, { allowFunctionChange: true }));
    expect(model.group('a').size).toBe(8);
    expect(model.param('n/gamma').value.shape).toEqual([8]);
    expect(model.journal[0].changes[0].summary).toMatch(/function changed/);
    expect(maxAbsDiff(before, model.apply(input))).toBeGreaterThan(1e-3);
    // Removing and permuting are not affected by the declaration.
    model.edit((tx) => tx.removeUnits('a', [0]).permuteUnits('a', [6, 0, 1, 2, 3, 4, 5]));
    expect(model.group('a').size).toBe(7);
    input.dispose();
    before.dispose();
    model.dispose();
  });

  it('batchNorm normalises per channel: it declares nothing and insertion preserves the function', () => {
    const model = Model.create(through('batchNorm'), { seed: 1 });
    expect(model.group('a').insertChangesFunction).toBeUndefined();
    const input = x();
    const before = model.apply(input);
    model.edit((tx) => tx.insertUnits('a', 3, { at: 1 }));
    expect(model.param('n/movingMean').value.shape).toEqual([9]);
    expect(maxAbsDiff(before, model.apply(input))).toBeLessThanOrEqual(1e-5);
    input.dispose();
    before.dispose();
    model.dispose();
  });

  it('softmax over the feature axis declares it; elementwise ops do not', () => {
    const soft = Model.create(through('softmax'), { seed: 1 });
    expect(soft.group('a').insertChangesFunction?.[0]).toMatch(/softmax/);
    expect(() => soft.edit((tx) => tx.insertUnits('a', 1))).toThrow(/FUNCTION_NOT_PRESERVED/);
    soft.edit((tx) => tx.insertUnits('a', 1, { allowFunctionChange: true }));
    expect(soft.group('a').size).toBe(7);
    soft.dispose();
    const relu = Model.create(through('relu'), { seed: 1 });
    expect(relu.group('a').insertChangesFunction).toBeUndefined();
    relu.edit((tx) => tx.insertUnits('a', 1));
    relu.dispose();
  });

  it('a transformer\'s residual stream is marked; its FFN hidden group is not', () => {
    const model = Model.create(charTransformer({ vocabSize: 11, context: 4, dim: 8, heads: 2, layers: 1, ffn: 16 }), { seed: 0 });
    const residual = model.group('position');
    expect(residual.insertChangesFunction?.join('\n')).toMatch(/block0\.ln1/);
    expect(model.group('block0.ffn1').insertChangesFunction).toBeUndefined();
    expect(() => model.edit((tx) => tx.insertUnits(residual.id, 2))).toThrow(/FUNCTION_NOT_PRESERVED/);
    model.edit((tx) => tx.insertUnits('block0.ffn1', 2));
    model.dispose();
  });

  it('a plugin op that declares it gets the same behaviour', async () => {
    const registry = createOpRegistry().register(rmsNorm);
    const model = Model.create(through('rmsNorm'), { registry, seed: 1 });
    expect(model.group('a').insertChangesFunction).toEqual([expect.stringMatching(/node 'n' \(rmsNorm\).*root mean square/)]);
    const state = snapshot(model);
    const { error, leaked } = await leakOnThrow(() => model.edit((tx) => tx.insertUnits('a', 2, { at: 0 })));
    expect(leaked).toBe(0);
    expect(isRsError(error, 'FUNCTION_NOT_PRESERVED')).toBe(true);
    expect(snapshot(model)).toBe(state);
    model.edit((tx) => tx.insertUnits('a', 2, { at: 0, allowFunctionChange: true }));
    expect(model.param('n/gain').value.shape).toEqual([8]);
    model.dispose();
  });
});
