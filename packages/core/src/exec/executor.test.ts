import { describe, it, expect, beforeAll } from 'vitest';
import { tf, type Tensor } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { Model } from '../model';
import { execute } from './executor';
import type { GraphDef } from '../ir/types';

beforeAll(useCpu);

const graph: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
  nodes: [
    { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
    { id: 'b', op: 'relu', inputs: ['a'], attrs: {} },
    { id: 'head', op: 'dense', inputs: ['b'], attrs: { units: 2 } },
    { id: 'c', op: 'dense', inputs: ['b'], attrs: { units: 4 } },
    { id: 'out', op: 'dense', inputs: ['c'], attrs: { units: 2 } },
  ],
  outputs: ['head', 'out'],
};

describe('execute with a shared values cache', () => {
  it('reuses known values: a second run computes only what they do not cover (early exit)', () => {
    const model = Model.create(graph, { seed: 1 });
    const x = tf.randomNormal([3, 4], 0, 1, 'float32', 1);
    const ran: string[] = [];
    const intercept = (step: { node: { id: string } }): undefined => void ran.push(step.node.id);
    const [head, out, full] = tf.tidy(() => {
      const params = model.forwardParams();
      const values = new Map<string, Tensor>();
      const first = execute(model.plan, [x], params, { training: false, rng: model.rng, targets: ['head'], values, intercept }).outputs[0];
      expect(ran).toEqual(['a', 'b', 'head']);
      ran.length = 0;
      const second = execute(model.plan, [x], params, { training: false, rng: model.rng, targets: ['out'], values, intercept }).outputs[0];
      expect(ran).toEqual(['c', 'out']);
      // Seeded with a middle value only: nothing upstream of it runs.
      ran.length = 0;
      const seeded = new Map<string, Tensor>([['b', values.get('b') as Tensor]]);
      execute(model.plan, [x], params, { training: false, rng: model.rng, targets: ['out'], values: seeded, intercept });
      expect(ran).toEqual(['c', 'out']);
      return [first, second, execute(model.plan, [x], params, { training: false, rng: model.rng }).outputs[1]];
    });
    expect(maxAbsDiff(out, full)).toBe(0);
    tf.dispose([x, head, out, full]);
    model.dispose();
  });
});
