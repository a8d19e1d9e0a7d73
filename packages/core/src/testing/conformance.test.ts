import { describe, it, expect, beforeAll } from 'vitest';
import { useCpu } from '../test-setup';
import { conformanceCases, checkConformance, type ConformanceCase, type ConformanceGenerator } from './conformance';
import { builtinOps } from '../ops/builtins';
import { createOpRegistry } from '../ops/registry';
import type { OpSchema } from '../ops/schema';
import { isRsError } from '../errors';
import { tf, type Tensor } from '../tf';

beforeAll(useCpu);

const cases = conformanceCases();
const of = (op: string): ConformanceCase[] => cases.filter((c) => c.op === op);
const attrSet = (op: string, key: string): Set<string> => new Set(of(op).map((c) => JSON.stringify(c.attrs[key])));

/** One float input of shape [2, n] for the test-only ops below. */
const vector: ConformanceGenerator = { generate: (rng) => ({ attrs: {}, inputs: [{ shape: [2, 1 + rng.int(4)], dtype: 'float32' }] }) };

/** A registry holding only `op`, and its cases. */
function only(op: OpSchema<any>): { registry: ReturnType<typeof createOpRegistry>; cases: ConformanceCase[] } {
  const registry = createOpRegistry({ builtins: false }).register(op);
  return { registry, cases: conformanceCases({ registry, generators: { [op.name]: vector } }) };
}

describe('conformance cases', () => {
  it('cover every built-in op with at least 3 seeded random shapes, under unique names', () => {
    expect(new Set(cases.map((c) => c.op))).toEqual(new Set(builtinOps.map((op) => op.name)));
    for (const op of builtinOps) expect(of(op.name).length, op.name).toBeGreaterThanOrEqual(3);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(conformanceCases()).toEqual(cases);
    expect(conformanceCases({ seed: 1 })).not.toEqual(cases);
    expect(conformanceCases({ perOp: 6 }).filter((c) => c.op === 'relu')).toHaveLength(6);
  });

  it('cover the variants each op must be checked in', () => {
    // conv2d: every combination of padding x strides x kernel x single/several input channels.
    const combos = new Set(of('conv2d').map((c) => `${c.attrs.padding} ${c.attrs.strides} ${c.attrs.kernelSize} ${c.inputs[0].shape[3] === 1 ? 1 : 'n'}`));
    for (const padding of ['valid', 'same']) for (const strides of [1, 2]) for (const kernel of [3, 5]) for (const channels of [1, 'n']) {
      expect(combos, `conv2d ${padding} ${strides} ${kernel} ${channels}`).toContain(`${padding} ${strides} ${kernel} ${channels}`);
    }
    expect(new Set(of('add').map((c) => c.inputs.length))).toEqual(new Set([2, 3, 4]));
    for (const op of ['batchNorm', 'dropout']) expect(new Set(of(op).map((c) => c.training)), op).toEqual(new Set([true, false]));
    expect(attrSet('multiHeadAttention', 'causal')).toEqual(new Set(['true', 'false']));
    expect(attrSet('maxPool2d', 'padding')).toEqual(new Set(['"valid"', '"same"']));
    expect(attrSet('softmax', 'axis').size).toBeGreaterThanOrEqual(3);
    expect(of('embedding').every((c) => c.inputs[0].dtype === 'int32')).toBe(true);
  });

  it('refuse a registry op without a case generator (no exclusions)', () => {
    const registry = createOpRegistry().register({ name: 'mystery', arity: 1, infer: (_a, [x]) => x, forward: ([x]) => tf.clone(x) });
    expect(() => conformanceCases({ registry })).toThrow(/'mystery'.*no case generator/);
    try {
      conformanceCases({ registry });
    } catch (e) {
      expect(isRsError(e, 'INVALID_ARGUMENT') && e.details.op).toBe('mystery');
    }
    expect(conformanceCases({ registry, generators: { mystery: vector } }).filter((c) => c.op === 'mystery')).toHaveLength(3);
  });
});

describe('checkConformance', () => {
  it('passes cpu against itself for every case, restoring the backend and leaking no tensor', () => {
    const before = tf.memory().numTensors;
    for (const c of cases) {
      const result = checkConformance(c, { backend: 'cpu', reference: 'cpu' });
      expect(result.ok, result.report).toBe(true);
      expect(result.maxError).toBe(0);
      // Forward output, a gradient for every float input and every trained param.
      expect(result.tensors.map((t) => t.tensor)).toContain('output');
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('compares the output, every gradient and the new batchNorm statistics', () => {
    const names = (c: ConformanceCase) => checkConformance(c, { backend: 'cpu' }).tensors.map((t) => t.tensor);
    const conv = of('conv2d').find((c) => c.attrs.useBias !== false) as ConformanceCase;
    expect(names(conv)).toEqual(['output', 'd input 0', 'd param kernel', 'd param bias']);
    expect(names(of('add').find((c) => c.inputs.length === 3) as ConformanceCase)).toEqual(['output', 'd input 0', 'd input 1', 'd input 2']);
    expect(names(of('embedding')[0])).toEqual(['output', 'd param table']);
    // Training: batch statistics, so the moving statistics get no gradient but new values.
    expect(names(of('batchNorm').find((c) => c.training) as ConformanceCase)).toEqual([
      'output', 'd input 0', 'd param gamma', 'd param beta', 'state movingMean', 'state movingVariance',
    ]);
    expect(names(of('batchNorm').find((c) => !c.training) as ConformanceCase)).toEqual([
      'output', 'd input 0', 'd param gamma', 'd param beta', 'd param movingMean', 'd param movingVariance',
    ]);
  });

  it('fails, naming the tensor and the element, when the two runs disagree', () => {
    // Two runs per check (tested, then reference): a forward that differs between them stands
    // for a backend with a wrong kernel.
    let calls = 0;
    const drifting: OpSchema = { name: 'drifting', arity: 1, infer: (_a, [x]) => x, forward: ([x]) => tf.add(x, calls++ % 2 === 0 ? 1e-3 : 0) };
    const forward = only(drifting);
    const result = checkConformance(forward.cases[0], { backend: 'cpu', registry: forward.registry });
    expect(result.ok).toBe(false);
    expect(result.maxError).toBeGreaterThan(1);
    expect(result.report).toMatch(/drifting #1 \[2, \d\].*FAILED.*worst output \[2, \d\] at \[\d, \d\]: cpu .* vs cpu /);

    // Same forward, different gradient: only `d input 0` fails.
    let backward = 0;
    const wrongGradient: OpSchema = {
      name: 'wrongGradient',
      arity: 1,
      infer: (_a, [x]) => x,
      forward: ([x]) => {
        const scale = backward++ % 2 === 0 ? 2.001 : 2;
        const f = tf.customGrad(((t: Tensor) => ({ value: tf.mul(t, 2), gradFunc: (dy: Tensor) => tf.mul(dy, scale) })) as unknown as Parameters<typeof tf.customGrad>[0]);
        return f(x);
      },
    };
    const gradient = only(wrongGradient);
    const failed = checkConformance(gradient.cases[0], { backend: 'cpu', registry: gradient.registry });
    expect(failed.ok).toBe(false);
    expect(failed.tensors.find((t) => t.tensor === 'output')?.maxError).toBe(0);
    expect(failed.report).toMatch(/worst d input 0 /);
  });

  it('reports a throwing op as a failure, restoring the backend without leaking', () => {
    const throwing: OpSchema = {
      name: 'throwing',
      arity: 1,
      infer: (_a, [x]) => x,
      forward: ([x]) => {
        tf.exp(x);
        throw new Error('no kernel for this');
      },
    };
    const { registry, cases: broken } = only(throwing);
    const before = tf.memory().numTensors;
    const result = checkConformance(broken[0], { backend: 'cpu', registry });
    expect(result.ok).toBe(false);
    expect(result.maxError).toBe(Infinity);
    expect(result.report).toMatch(/cpu threw: no kernel for this/);
    expect(result.report).not.toMatch(/leaked/);
    expect(tf.memory().numTensors).toBe(before);
    expect(checkConformance(cases[0], { backend: 'cpu' }).ok).toBe(true);
  });

  it('refuses a backend that is not installed (NO_BACKEND), leaving the active one', () => {
    expect(() => checkConformance(cases[0], { backend: 'nope', reference: 'cpu' })).toThrow(expect.objectContaining({ code: 'NO_BACKEND' }));
    expect(tf.getBackend()).toBe('cpu');
  });
});
