import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu } from '../test-setup';
import { Model } from '../model';
import { lenet300100 } from '../models/builders';

beforeAll(useCpu);

const small = () => Model.create(lenet300100({ inputs: 4, hidden: [3, 2], classes: 2 }), { seed: 1 });
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('masks of inserted units and nodes', () => {
  it('insertUnits masks: new slices take the given mask (values multiplied by it), existing masks are extended', () => {
    const start = tf.memory().numTensors;
    const model = small();
    const mask = tf.tensor2d([[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]]);
    model.edit((tx) => tx.setMask('fc1/kernel', mask));
    const incoming = tf.tensor2d([[1], [2], [3], [4]]);
    const incomingMask = tf.tensor2d([[0], [1], [1], [0]]);
    const outgoing = tf.tensor2d([[5, 6]]);
    const outgoingMask = tf.tensor2d([[1, 0]]);
    model.edit((tx) =>
      tx.insertUnits('fc1', 1, { values: { 'fc1/kernel': incoming, 'fc2/kernel': outgoing }, masks: { 'fc1/kernel': incomingMask, 'fc2/kernel': outgoingMask } }),
    );
    expect(model.param('fc1/kernel').mask?.arraySync()).toEqual([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]]);
    expect((model.param('fc1/kernel').value.arraySync() as number[][]).map((r) => r[3])).toEqual([0, 2, 3, 0]);
    // fc2/kernel had no mask: it gets one, all ones on its existing rows.
    expect(model.param('fc2/kernel').mask?.arraySync()).toEqual([[1, 1], [1, 1], [1, 1], [1, 0]]);
    expect((model.param('fc2/kernel').value.arraySync() as number[][])[3]).toEqual([5, 0]);
    // A masked parameter without a given mask: its new slice is fresh (all ones), as before.
    model.edit((tx) => tx.insertUnits('fc1', 1));
    expect((model.param('fc1/kernel').mask?.arraySync() as number[][]).map((r) => r[4])).toEqual([1, 1, 1, 1]);
    expect(model.counts().nonzeroParams).toBe(model.counts().params - 6);
    model.dispose();
    tf.dispose([mask, incoming, incomingMask, outgoing, outgoingMask]);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('insertUnits masks are checked (key, shape, binary) and a refused edit changes nothing', () => {
    const model = small();
    const journal = model.journal.length;
    const wrongShape = tf.ones([4, 2]);
    const notBinary = tf.tensor2d([[1], [0.5], [1], [1]]);
    const ok = tf.ones([4, 1]);
    const count = tf.memory().numTensors;
    expect(codeOf(() => model.edit((tx) => tx.insertUnits('fc1', 1, { masks: { 'fc1/kernel': wrongShape } })))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => model.edit((tx) => tx.insertUnits('fc1', 1, { masks: { 'fc1/kernel': notBinary } })))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => model.edit((tx) => tx.insertUnits('fc1', 1, { masks: { 'fc3/kernel': ok } })))).toBe('UNKNOWN_PARAM');
    expect(model.journal.length).toBe(journal);
    expect(model.group('fc1').size).toBe(3);
    expect(model.param('fc1/kernel').mask).toBeUndefined();
    expect(tf.memory().numTensors).toBe(count);
    model.dispose();
    tf.dispose([wrongShape, notBinary, ok]);
  });

  it('insertNode and replaceNode masks: by parameter name, checked like params, applied to the value', () => {
    const start = tf.memory().numTensors;
    const model = small();
    const eye = tf.eye(3);
    const eyeMask = tf.tensor2d([[1, 0, 0], [0, 0, 0], [0, 0, 1]]);
    const x = tf.randomNormal([2, 4], 0, 1, 'float32', 2);
    model.edit((tx) => tx.insertNode({ id: 'extra', op: 'dense', inputs: ['relu1'], attrs: { units: 3 } }, { after: 'relu1', params: { kernel: eye }, masks: { kernel: eyeMask } }));
    expect(model.param('extra/kernel').mask?.arraySync()).toEqual([[1, 0, 0], [0, 0, 0], [0, 0, 1]]);
    expect(model.param('extra/kernel').value.arraySync()).toEqual([[1, 0, 0], [0, 0, 0], [0, 0, 0 + 1]]);
    expect(model.param('extra/bias').mask).toBeUndefined();
    const bad = tf.tensor2d([[2, 0, 0], [0, 1, 0], [0, 0, 1]]);
    const journal = model.journal.length;
    expect(codeOf(() => model.edit((tx) => tx.insertNode({ id: 'e2', op: 'dense', inputs: ['relu1'], attrs: { units: 3 } }, { after: 'relu1', masks: { kernel: bad } })))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => model.edit((tx) => tx.insertNode({ id: 'e2', op: 'dense', inputs: ['relu1'], attrs: { units: 3 } }, { after: 'relu1', masks: { weights: eyeMask } })))).toBe('UNKNOWN_PARAM');
    expect(codeOf(() => model.edit((tx) => tx.insertNode({ id: 'e2', op: 'dense', inputs: ['relu1'], attrs: { units: 3 } }, { after: 'relu1', masks: { bias: eyeMask } })))).toBe('SHAPE_MISMATCH');
    expect(model.journal.length).toBe(journal);
    // replaceNode keeps the kept parameter's mask; a given mask replaces it.
    model.edit((tx) => tx.replaceNode('extra', { op: 'dense', inputs: ['relu1'], attrs: { units: 3, activation: 'relu' } }));
    expect(model.param('extra/kernel').mask?.arraySync()).toEqual([[1, 0, 0], [0, 0, 0], [0, 0, 1]]);
    const diag = tf.tensor2d([[0, 0, 0], [0, 0, 0], [0, 0, 1]]);
    model.edit((tx) => tx.replaceNode('extra', { op: 'dense', inputs: ['relu1'], attrs: { units: 3 } }, { masks: { kernel: diag } }));
    expect(model.param('extra/kernel').value.arraySync()).toEqual([[0, 0, 0], [0, 0, 0], [0, 0, 1]]);
    expect(model.counts().nonzeroParams).toBe(model.counts().params - 8);
    tf.dispose(model.apply(x));
    model.dispose();
    tf.dispose([eye, eyeMask, x, bad, diag]);
    expect(tf.memory().numTensors).toBe(start);
  });
});

describe('masks at inference', () => {
  it('a masked model infers from its stored (already masked) values: same outputs, no mask product per call', async () => {
    const model = small();
    model.edit((tx) => tx.setMask('fc1/kernel', tf.tensor2d([[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]])));
    const plain = Model.create(model.graph, { params: Object.fromEntries(model.paramKeys().map((k) => [k, model.param(k).value])) });
    const x = tf.tensor2d([[0.5, -1, 2, 0.25]]);
    const start = tf.memory().numTensors;
    const profile = await tf.profile(() => tf.dispose(model.apply(x)));
    expect(profile.kernelNames).not.toContain('Multiply');
    expect(tf.memory().numTensors).toBe(start);
    const [a, b] = [model.apply(x), plain.apply(x)];
    expect(a.arraySync()).toEqual(b.arraySync());
    tf.dispose([a, b, x]);
    model.dispose();
    plain.dispose();
  });
});
