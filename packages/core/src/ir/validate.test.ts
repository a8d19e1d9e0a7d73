import { describe, it, expect, beforeAll } from 'vitest';
import { useCpu } from '../test-setup';
import { tf } from '../tf';
import { validateGraph } from './validate';
import { defaultRegistry, createOpRegistry } from '../ops/registry';
import { Model } from '../model';
import { isRsError, type RsErrorCode } from '../errors';
import type { GraphDef } from './types';
import type { OpSchema } from '../ops/schema';
import { fit } from '../train/fit';

beforeAll(useCpu);

const base = (): GraphDef => ({
  inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
  nodes: [
    { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 3 } },
    { id: 'b', op: 'relu', inputs: ['a'], attrs: {} },
  ],
  outputs: ['b'],
});

function failure(graph: GraphDef): { code: RsErrorCode; message: string } {
  try {
    validateGraph(graph, defaultRegistry);
  } catch (e) {
    if (isRsError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected the graph to be rejected');
}

describe('graph validation: bad input gives typed errors that say what is wrong', () => {
  it('unknown op', () => {
    const g = base();
    g.nodes[1].op = 'reluu';
    expect(failure(g)).toMatchObject({ code: 'UNKNOWN_OP', message: expect.stringMatching(/'reluu'.*Registered ops: .*relu/) });
  });

  it('shape mismatch names the node, the op and the shapes', () => {
    const g = base();
    g.nodes.push({ id: 'c', op: 'dense', inputs: ['x'], attrs: { units: 5 } }, { id: 'sum', op: 'add', inputs: ['b', 'c'], attrs: {} });
    g.outputs = ['sum'];
    const f = failure(g);
    expect(f.code).toBe('SHAPE_MISMATCH');
    expect(f.message).toContain("node 'sum' (add)");
    expect(f.message).toContain('[?, 3]');
    expect(f.message).toContain('[?, 5]');
  });

  it('dangling input', () => {
    const g = base();
    g.nodes[1].inputs = ['nowhere'];
    expect(failure(g)).toMatchObject({ code: 'DANGLING_INPUT', message: expect.stringContaining("'b' reads 'nowhere'") });
    const h = base();
    h.outputs = ['ghost'];
    expect(failure(h).code).toBe('DANGLING_INPUT');
  });

  it('cycle', () => {
    const g = base();
    g.nodes[0].inputs = ['b'];
    expect(failure(g)).toMatchObject({ code: 'CYCLE', message: expect.stringMatching(/'a'.*'b'/) });
  });

  it('duplicate id (between nodes, or a node and an input)', () => {
    const g = base();
    g.nodes[1].id = 'a';
    expect(failure(g).code).toBe('DUPLICATE_ID');
    const h = base();
    h.nodes[1].id = 'x';
    expect(failure(h).code).toBe('DUPLICATE_ID');
  });

  it('bad attrs, arity, and malformed graphs', () => {
    const g = base();
    g.nodes[0].attrs = { units: -2 };
    expect(failure(g)).toMatchObject({ code: 'INVALID_ATTRS', message: expect.stringContaining("node 'a' (dense)") });
    const h = base();
    h.nodes[1].inputs = ['a', 'x'];
    expect(failure(h).code).toBe('ARITY');
    expect(failure({ inputs: [], nodes: [], outputs: [] } as GraphDef).code).toBe('INVALID_GRAPH');
    expect(failure({ nodes: [] } as unknown as GraphDef).code).toBe('INVALID_GRAPH');
  });

  it('entries of inputs or nodes that are not objects (null, numbers, arrays) are INVALID_GRAPH, not a raw TypeError', () => {
    for (const bad of [null, 7, 'x', [], true]) {
      const g = base();
      (g.nodes as unknown[])[1] = bad;
      expect(failure(g)).toMatchObject({ code: 'INVALID_GRAPH', message: expect.stringContaining('Node 1 is ') });
      const h = base();
      (h.inputs as unknown[])[0] = bad;
      expect(failure(h)).toMatchObject({ code: 'INVALID_GRAPH', message: expect.stringContaining('Graph input 0 is ') });
    }
    const g = base();
    (g.nodes as unknown[]).push(null);
    expect(() => Model.create(g)).toThrow(/INVALID_GRAPH/);
  });

  it('Model.create reports the same errors and leaks nothing', () => {
    const g = base();
    g.nodes[1].inputs = ['nowhere'];
    const before = tf.memory().numTensors;
    expect(() => Model.create(g)).toThrow(/DANGLING_INPUT/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('auxiliary losses contributed by ops', () => {
  // A plugin op that passes its input through and adds an L2 penalty on it.
  const penalty: OpSchema<{ weight: number }> = {
    name: 'l2Penalty',
    arity: 1,
    infer: (_a, [x]) => x,
    forward: ([x], _p, attrs, ctx) => {
      ctx.addLoss('l2', tf.mul(tf.mean(tf.square(x)), attrs.weight));
      ctx.addMetric('mean', tf.mean(x));
      return x;
    },
    units: 'elementwise',
  };

  it('are added to the training loss and reported every step', async () => {
    const registry = createOpRegistry().register(penalty);
    const g = base();
    g.nodes.push({ id: 'pen', op: 'l2Penalty', inputs: ['b'], attrs: { weight: 10 } }, { id: 'out', op: 'dense', inputs: ['pen'], attrs: { units: 2 } });
    g.outputs = ['out'];
    const model = Model.create(g, { registry, seed: 1 });
    const data = { x: tf.randomNormal([16, 4], 0, 1, 'float32', 1), y: tf.tensor1d([...Array(16).keys()].map((i) => i % 2), 'int32') };
    const seen: number[] = [];
    await fit(model, data, {
      loss: 'softmaxCrossEntropy',
      epochs: 20,
      batchSize: 16,
      callbacks: [{ onStepEnd: (info) => void seen.push(info.losses['pen/l2']) }],
    });
    expect(seen).toHaveLength(20);
    expect(seen.every((v) => typeof v === 'number' && v >= 0)).toBe(true);
    // The penalty is trained on: it falls.
    expect(seen[19]).toBeLessThan(seen[0]);
    const run = model.run(data.x);
    expect(run.losses.has('pen/l2')).toBe(true);
    expect(run.metrics.has('pen/mean')).toBe(true);
    for (const t of [...run.outputs, ...run.losses.values(), ...run.metrics.values()]) t.dispose();
    tf.dispose([data.x, data.y]);
    model.dispose();
  });
});
