import { describe, it, expect, beforeAll } from 'vitest';
import { useCpu } from '../test-setup';
import { conformanceCases, checkConformance } from './conformance';
import { builtinOps } from '../ops/builtins';
import { createOpRegistry } from '../ops/registry';
import { tf } from '../tf';

beforeAll(useCpu);

describe('conformance suite', () => {
  it('covers every built-in op with several random shapes', () => {
    const cases = conformanceCases();
    for (const op of builtinOps) expect(cases.filter((c) => c.op === op.name).length, op.name).toBeGreaterThanOrEqual(3);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it('refuses a registry op without a case generator (no exclusions)', () => {
    const registry = createOpRegistry().register({ name: 'mystery', arity: 1, infer: (_a, [x]) => x, forward: ([x]) => x });
    expect(() => conformanceCases({ registry })).toThrow(/mystery.*no case generator/);
  });

  it('passes cpu against itself for every case, without leaking tensors', () => {
    const before = tf.memory().numTensors;
    for (const c of conformanceCases()) {
      const result = checkConformance(c, { backend: 'cpu' });
      expect(result.ok, result.report).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
