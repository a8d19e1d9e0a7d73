// What every op plugin should test: the model builds with the plugin's registry, core's unit
// edits (prune = removeUnits, grow = insertUnits) do what the unit declaration promises, the
// model saves and loads with the registry, it trains, forward and gradients leak nothing, and
// the ONNX rules emit what they should.
import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, fit, isRsError, loadFromBuffer, saveToBuffer, tf, type GraphDef } from '@rs/core';
import { checkConformance, conformanceCases, leakOnThrow, maxAbsDiff } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { prelu, register, rmsNorm } from '../src/index';
import { onnxRules, registerOnnx, type EmitContext } from '../src/onnx';

beforeAll(async () => {
  // A backend must be installed before any tensor is made (see the README).
  await install();
});

// x -> fc1 -> prelu -> fc2 -> rmsNorm -> out. Group 'fc1' passes through prelu (elementwise,
// per-unit slope); group 'fc2' passes through rmsNorm (normalised across its units).
const graph: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
    { id: 'act', op: 'prelu', inputs: ['fc1'], attrs: {} },
    { id: 'fc2', op: 'dense', inputs: ['act'], attrs: { units: 8 } },
    { id: 'norm', op: 'rmsNorm', inputs: ['fc2'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['norm'], attrs: { units: 3 } },
  ],
  outputs: ['out'],
};

const newModel = (seed = 1) => Model.create(graph, { registry: register(createOpRegistry()), seed });
const input = () => tf.randomNormal([5, 6], 0, 1, 'float32', 7);

describe('registration', () => {
  it('the ops are unknown until registered; the same op again is a no-op, another op under its name is refused', () => {
    expect(() => Model.create(graph, { registry: createOpRegistry() })).toThrow(/UNKNOWN_OP/);
    const registry = register(createOpRegistry());
    expect(registry.has('prelu') && registry.has('rmsNorm')).toBe(true);
    expect(register(registry)).toBe(registry); // registering the plugin twice changes nothing
    expect(() => registry.register({ ...prelu })).toThrow(/DUPLICATE_OP/);
  });
});

describe('unit groups follow the declarations', () => {
  it('prelu: its slope is a member of the group of fc1; nothing marks the group', () => {
    const model = newModel();
    const group = model.group('fc1');
    expect(model.group('act')).toBe(group);
    expect(group.params.map((p) => `${p.param}#${p.axis}`).sort()).toEqual(['act/alpha#0', 'fc1/bias#0', 'fc1/kernel#1', 'fc2/kernel#0']);
    expect(group.insertChangesFunction).toBeUndefined();
    model.dispose();
  });

  it('rmsNorm: the group of fc2 says why inserting units changes the function', () => {
    const model = newModel();
    const group = model.group('fc2');
    expect(group.params.map((p) => p.param)).toContain('norm/gain');
    expect(group.insertChangesFunction).toEqual([expect.stringMatching(/node 'norm' \(rmsNorm\) normalises across these units/)]);
    model.dispose();
  });
});

describe('prune and grow', () => {
  it('removeUnits (pruning) shrinks the per-unit slope with its units, and equals zeroing those units', () => {
    const x = input();
    const masked = newModel();
    masked.edit((tx) => {
      const keep = tf.tensor1d([1, 0, 1, 1, 1, 1, 0, 1]);
      tx.setMask('fc1/kernel', tf.mul(tf.ones([6, 8]), keep));
      tx.setMask('fc1/bias', keep);
    });
    const pruned = newModel();
    pruned.edit((tx) => tx.removeUnits('fc1', [1, 6]), { technique: 'prune', reason: 'template test' });
    expect(pruned.param('act/alpha').value.shape).toEqual([6]);
    expect(pruned.param('fc2/kernel').value.shape).toEqual([6, 8]);
    // prelu(0) = 0, so removing a unit equals masking what produces it.
    expect(maxAbsDiff(masked.apply(x), pruned.apply(x))).toBeLessThanOrEqual(1e-5);
    // The normalised group may be pruned too (it changes the function, as pruning does).
    pruned.edit((tx) => tx.removeUnits('fc2', [0]));
    expect(pruned.param('norm/gain').value.shape).toEqual([7]);
    for (const t of [x]) t.dispose();
    masked.dispose();
    pruned.dispose();
  });

  it('insertUnits through prelu preserves the function; the new slopes start at the initializer', () => {
    const model = newModel();
    const x = input();
    const before = model.apply(x);
    model.edit((tx) => tx.insertUnits('fc1', 4, { at: 2 }), { technique: 'grow', reason: 'template test' });
    expect(Array.from(model.param('act/alpha').value.dataSync())).toEqual(new Array(12).fill(0.25));
    expect(model.graph.nodes[0].attrs.units).toBe(12);
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    model.dispose();
  });

  it('insertUnits through rmsNorm is refused (typed error, model unchanged, nothing leaked) unless allowFunctionChange', async () => {
    const model = newModel();
    const x = input();
    const before = model.apply(x);
    const { error, leaked } = await leakOnThrow(() => model.edit((tx) => tx.insertUnits('fc2', 2)));
    expect(leaked).toBe(0);
    expect(isRsError(error, 'FUNCTION_NOT_PRESERVED')).toBe(true);
    expect(model.param('norm/gain').value.shape).toEqual([8]);
    expect(model.journal).toHaveLength(0);

    model.edit((tx) => tx.insertUnits('fc2', 2, { allowFunctionChange: true }), { technique: 'grow', reason: 'accepts the change' });
    expect(model.param('norm/gain').value.shape).toEqual([10]);
    expect(maxAbsDiff(before, model.apply(x))).toBeGreaterThan(1e-4);
    model.dispose();
  });
});

describe('save, load, train', () => {
  it('saves and loads with { registry }; without it the load names the missing op', () => {
    const model = newModel();
    model.edit((tx) => tx.removeUnits('fc1', [0]));
    const bytes = saveToBuffer(model);
    expect(() => loadFromBuffer(bytes)).toThrow(/prelu|rmsNorm/);
    const loaded = loadFromBuffer(bytes, { registry: register(createOpRegistry()) });
    const x = input();
    expect(maxAbsDiff(model.apply(x), loaded.apply(x))).toBe(0);
    expect(loaded.journal).toHaveLength(1);
    model.dispose();
    loaded.dispose();
  });

  it('trains a few steps with fit; the slopes and gains learn', async () => {
    const model = newModel(3);
    const x = input();
    const y = tf.tensor1d([0, 1, 2, 1, 0], 'int32');
    const history = await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 20, batchSize: 5 });
    expect(history.losses[history.losses.length - 1]).toBeLessThan(history.losses[0]);
    expect(Array.from(model.param('act/alpha').value.dataSync()).some((v) => v !== 0.25)).toBe(true);
    expect(Array.from(model.param('norm/gain').value.dataSync()).some((v) => v !== 1)).toBe(true);
    model.dispose();
  });
});

describe('conformance: forward and gradients on the cpu backend, no leaks', () => {
  // `conformanceCases` needs a generator for every op of the registry: use one with only yours.
  const registry = register(createOpRegistry({ builtins: false }));
  const f32 = (shape: number[]) => ({ shape, dtype: 'float32' as const });
  const cases = conformanceCases({
    registry,
    generators: {
      prelu: { generate: (rng) => ({ attrs: {}, inputs: [f32([2, 1 + rng.int(3), 1 + rng.int(6)])] }) },
      rmsNorm: { generate: (rng) => ({ attrs: { epsilon: 1e-5 }, inputs: [f32([1 + rng.int(3), 1 + rng.int(6)])] }) },
    },
  });
  for (const c of cases) {
    it(c.name, () => {
      // A second backend (wasm, webgl, yours) goes in `backend`; 'cpu' is the reference.
      const result = checkConformance(c, { backend: 'cpu', reference: 'cpu', registry });
      expect(result.ok, result.report).toBe(true);
    });
  }
});

describe('ONNX rules', () => {
  /** A stand-in for @rs/onnx's emit context that records the ONNX nodes a rule appends. */
  function recorder(attrs: Record<string, unknown>, shape: (number | null)[]) {
    const nodes: string[] = [];
    let n = 0;
    const ctx: EmitContext = {
      inputNames: ['X'],
      inputs: [{ shape }],
      node: { attrs },
      param: (name) => `param:${name}`,
      scalar: (value) => `scalar:${value}`,
      op: (type, inputs) => {
        const out = `v${n++}`;
        nodes.push(`${out} = ${type}(${inputs.join(', ')})`);
        return out;
      },
      reduce: (type, x, axes, keepdims) => {
        const out = `v${n++}`;
        nodes.push(`${out} = ${type}(${x}; axes ${axes.join(',')}${keepdims ? ', keepdims' : ''})`);
        return out;
      },
    };
    return { ctx, nodes };
  }

  it('there is one rule per op, and registerOnnx hands each to the registering function', () => {
    expect(onnxRules.map((r) => r.op).sort()).toEqual([prelu.name, rmsNorm.name].sort());
    const seen: string[] = [];
    registerOnnx((rule) => seen.push(rule.op));
    expect(seen.sort()).toEqual(['prelu', 'rmsNorm']);
  });

  it('prelu is PRelu with the slope initializer; rmsNorm is x / sqrt(mean(x*x) + eps) * gain', () => {
    const p = recorder({}, [null, 8]);
    expect(onnxRules[0].emit(p.ctx)).toBe('v0');
    expect(p.nodes).toEqual(['v0 = PRelu(X, param:alpha)']);
    const r = recorder({ epsilon: 1e-5 }, [null, 4, 8]);
    const out = onnxRules[1].emit(r.ctx);
    expect(r.nodes).toEqual([
      'v0 = Mul(X, X)',
      'v1 = ReduceMean(v0; axes 2, keepdims)',
      'v2 = Add(v1, scalar:0.00001)',
      'v3 = Sqrt(v2)',
      'v4 = Div(X, v3)',
      'v5 = Mul(v4, param:gain)',
    ]);
    expect(out).toBe('v5');
  });
});
