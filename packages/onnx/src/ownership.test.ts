// The MoE lowering is @rs/moe's: it is found through the op registry (not in this package's
// rule table), and the capacity it exports is @rs/moe's capacity formula. A change to that
// formula alone changes the exported graph; these tests fail if the exporter keeps a copy.
import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, createOpRegistry, type GraphDef } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { register, capacityFormula, expertCapacity, hostArithmetic, moeOnnx, moeOnnxRule, type CapacityFormula } from '@rs/moe';
import { defaultOnnxRules, onnxSupport, toOnnx } from './index';
import { onnx } from './proto';
import { compareWithOrt, randomInput, TOLERANCE } from './test-harness';

beforeAll(async () => {
  await install();
});

const TOKENS = 24;
const EXPERTS = 4;
const FACTOR = 0.5;

function moeModel(registry = register(createOpRegistry())): Model {
  const graph: GraphDef = {
    inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
    nodes: [{ id: 'moe', op: 'moe', inputs: ['x'], attrs: { experts: EXPERTS, hidden: 8, routing: 'switch', evalCapacityFactor: FACTOR } }],
    outputs: ['moe'],
  };
  return Model.create(graph, {
    registry,
    seed: 2,
    params: {
      'moe/router': tf.randomNormal([6, EXPERTS], 0, 1, 'float32', 5),
      'moe/routerBias': tf.randomNormal([EXPERTS], 0, 0.3, 'float32', 6),
    },
  });
}

/** The float32 constant the exported graph compares queue positions with (`Less(position, capacity)`). */
function exportedCapacity(bytes: Uint8Array): number {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as NonNullable<typeof model.graph>;
  const less = (graph.node ?? []).filter((n) => n.opType === 'Less');
  expect(less).toHaveLength(1);
  const name = (less[0].input as string[])[1];
  const init = (graph.initializer ?? []).find((t) => t.name === name);
  if (!init) throw new Error(`capacity '${name}' is not a constant`);
  const raw = init.rawData as Uint8Array;
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getFloat32(0, true);
}

/** A different rounding policy: twice the layer's capacity. */
const doubled: CapacityFormula = (m, tokens, experts, k, factor) => m.mul(capacityFormula(m, tokens, experts, k, factor), m.constant(2));

describe('technique-owned ONNX lowering (moe)', () => {
  it('comes from the registry that @rs/moe register()s into, not from the rule table', () => {
    expect(defaultOnnxRules.has('moe')).toBe(false);
    const registry = register(createOpRegistry());
    expect(registry.extension('onnx', 'moe')).toBe(moeOnnx);
    const model = moeModel(registry);
    try {
      expect(onnxSupport(model).supported).toBe(true);
      // The same model checked against a registry that provides no lowering for 'moe'.
      const bare = createOpRegistry();
      expect(onnxSupport(model, { registry: bare }).problems.map((p) => p.op)).toEqual(['moe']);
    } finally {
      model.dispose();
    }
  });

  it("exports @rs/moe's capacity: replacing the formula in the provided lowering changes the exported constant and the outputs", async () => {
    const x = randomInput([TOKENS, 6], 3, 2);
    const model = moeModel();
    try {
      // Fixed batch: the capacity is a constant computed by @rs/moe's own function.
      const expected = expertCapacity(TOKENS, EXPERTS, 1, FACTOR, false);
      expect(expected).toBe(3);
      expect(exportedCapacity(toOnnx(model, { batch: TOKENS }))).toBe(expected);
      expect((await compareWithOrt(model, [x], { batch: TOKENS })).maxDiff).toBeLessThanOrEqual(TOLERANCE);

      // The same model exported with the moe lowering built from another capacity formula.
      const changed = register(createOpRegistry()).provide('onnx', 'moe', moeOnnxRule(doubled), { override: true });
      const changedCapacity = exportedCapacity(toOnnx(model, { batch: TOKENS, registry: changed }));
      expect(changedCapacity).toBe(doubled(hostArithmetic, TOKENS, EXPERTS, 1, FACTOR));
      expect(changedCapacity).not.toBe(expected);
      // Dynamic batch too (capacity computed in the graph by the same formula): ONNX Runtime
      // follows the formula it was given, so it no longer matches the layer.
      expect((await compareWithOrt(model, [x])).maxDiff).toBeLessThanOrEqual(TOLERANCE);
      expect((await compareWithOrt(model, [x], { registry: changed })).maxDiff).toBeGreaterThan(1e-2);
    } finally {
      model.dispose();
      x.dispose();
    }
  });
});
