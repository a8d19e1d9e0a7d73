import { describe, it, expect, beforeAll } from 'vitest';
import { tf, adam, isRsError, lenet300100, lenet5, saveToBuffer, loadFromBuffer, type GraphDef } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { loadMnist, splitMnist, permutedMnist, type MnistSplit } from '@rs/datasets';
import { ProgressiveNet, addColumn, removeWeakLaterals, progressiveRegistry, runSequence, continualMetrics, type ContinualTask } from './index';

beforeAll(async () => {
  await install();
});

const mnist = loadMnist();
const mlp = (classes: number): GraphDef => lenet300100({ hidden: [16, 16], classes });

/** The first `count` samples of a split as tensors (flat or 28x28x1 images). */
function tensors(split: MnistSplit, count: number, image = false): { x: tf.Tensor; y: tf.Tensor } {
  const n = Math.min(count, split.count);
  const pixels = split.x.subarray(0, n * 784);
  return {
    x: image ? tf.tensor4d(pixels, [n, 28, 28, 1]) : tf.tensor2d(pixels, [n, 784]),
    y: tf.tensor1d(split.y.subarray(0, n), 'int32'),
  };
}

const bits = (t: tf.Tensor): Uint32Array => {
  const out = new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
  t.dispose();
  return out;
};

function expectThrows(body: () => unknown, code: Parameters<typeof isRsError>[1]): void {
  let error: unknown;
  try {
    body();
  } catch (e) {
    error = e;
  }
  expect(isRsError(error, code), String(error)).toBe(true);
}

describe('progressive columns', () => {
  it('split MNIST, 5 tasks (MLP): earlier heads are bit-identical after later columns are added and trained; BWT is exactly 0; fine-tuning forgets', async () => {
    const tasks: ContinualTask[] = splitMnist(mnist).map((t) => ({ id: `digits ${t.digits.join('/')}`, train: tensors(t.train, 300), test: tensors(t.test, 200) }));
    const before = tf.memory().numTensors;
    const net = ProgressiveNet.create(mlp(2), { task: tasks[0].id, seed: 1 });
    const probe = tf.tensor2d(mnist.test.x.subarray(0, 50 * 784), [50, 784]);
    const snapshots: Uint32Array[] = [];
    for (let i = 0; i < tasks.length; i++) {
      if (i > 0) net.addColumn(tasks[i].id);
      await net.train(tasks[i].id, tasks[i].train, { epochs: 2, batchSize: 32 });
      snapshots.push(bits(net.predict(probe, tasks[i].id)));
      for (let j = 0; j <= i; j++) expect(bits(net.predict(probe, tasks[j].id))).toEqual(snapshots[j]);
      expect(net.evaluate(tasks[i].test, tasks[i].id)).toBeGreaterThan(0.85); // 2-digit tasks; chance is 0.5
    }
    expect(net.tasks).toEqual(tasks.map((t) => t.id));
    // One journaled edit per column (plus the first column's record).
    expect(net.model.journal.filter((e) => e.technique === 'progressive')).toHaveLength(5);
    // Column k has adapters from k earlier columns into each of its 2 later layers: quadratic growth.
    const params = net.columnParams();
    expect(params.map((p) => p.own)).toEqual(Array(5).fill(784 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2));
    expect(params[0].adapters).toBe(0);
    for (let k = 2; k < 5; k++) expect(params[k].adapters).toBe(k * params[1].adapters);
    net.dispose();
    probe.dispose();
    expect(tf.memory().numTensors).toBe(before);

    const graph = mlp(2);
    const train = { epochs: 2, batchSize: 32 };
    const pnn = await runSequence('progressive', tasks, { graph, seed: 1, train });
    const ft = await runSequence('finetune', tasks, { graph, seed: 1, train });
    expect(pnn.bwt).toBe(0);
    expect(ft.bwt).toBeLessThan(-0.05); // fine-tuning reuses one 2-way head: it forgets
    expect(pnn.acc).toBeGreaterThan(ft.acc);
    expect(tf.memory().numTensors).toBe(before);
    for (const t of tasks) for (const d of [t.train, t.test]) tf.dispose([d.x as tf.Tensor, d.y]);
  });

  it('permuted MNIST, 3 tasks (MLP): earlier heads bit-identical, BWT 0', async () => {
    const tasks: ContinualTask[] = permutedMnist(mnist, { tasks: 3, seed: 2 }).map((t) => ({ id: t.id, train: tensors(t.train, 400), test: tensors(t.test, 300) }));
    const graph = mlp(10);
    const net = ProgressiveNet.create(graph, { task: 0, seed: 3 });
    const probe = tasks[0].test.x as tf.Tensor;
    await net.train(0, tasks[0].train, { epochs: 4, optimizer: adam({ learningRate: 3e-3 }) });
    const first = bits(net.predict(probe, 0));
    net.addColumn(1);
    await net.train(1, tasks[1].train, { epochs: 4, optimizer: adam({ learningRate: 3e-3 }) });
    net.addColumn(2);
    await net.train(2, tasks[2].train, { epochs: 4, optimizer: adam({ learningRate: 3e-3 }) });
    expect(bits(net.predict(probe, 0))).toEqual(first);
    net.dispose();
    const pnn = await runSequence('progressive', tasks, { graph, seed: 3, train: { epochs: 4 }, optimizer: () => adam({ learningRate: 3e-3 }) });
    expect(pnn.bwt).toBe(0);
    expect(pnn.matrix[2][0]).toBe(pnn.matrix[0][0]);
    expect(pnn.acc).toBeGreaterThan(0.6); // 10 classes, 400 samples, 52 steps per task; chance 0.1 (measured 0.74)
    for (const t of tasks) for (const d of [t.train, t.test]) tf.dispose([d.x as tf.Tensor, d.y]);
  });

  it('conv columns: 1x1-conv adapters into conv layers, dense adapters after flatten; earlier column unchanged by training', async () => {
    const graph = lenet5({ filters: [2, 4], hidden: [8, 8], classes: 2 });
    const [a, b] = splitMnist(mnist).slice(0, 2);
    const dataA = tensors(a.train, 128, true);
    const dataB = tensors(b.train, 128, true);
    const net = ProgressiveNet.create(graph, { task: 'a', seed: 0 });
    await net.train('a', dataA, { maxSteps: 3 });
    const probe = tf.slice(dataB.x, 0, 8);
    const first = bits(net.predict(probe, 'a'));
    const tensorsBefore = tf.memory().numTensors;
    addColumn(net, 'b');
    const nodes = new Map(net.model.graph.nodes.map((n) => [n.id, n]));
    expect(nodes.get('col1/conv2.lat0.proj')?.op).toBe('conv2d');
    expect(nodes.get('col1/conv2.lat0.proj')?.attrs).toMatchObject({ kernelSize: 1, filters: 2 });
    expect(nodes.get('col1/conv2.lat0.u')?.attrs).toMatchObject({ filters: 4, kernelSize: 5, useBias: false });
    expect(nodes.get('col1/conv2.lat0.scale')?.inputs).toEqual(['col0/pool1']);
    expect(nodes.get('col1/fc1.lat0.proj')?.op).toBe('dense');
    expect(nodes.get('col1/fc1.lat0.scale')?.inputs).toEqual(['col0/flatten']);
    expect(nodes.has('col1/conv1.lat0.scale')).toBe(false); // the first layer reads the input only
    expect(net.model.param('col0/conv1/kernel').trainable).toBe(false);
    expect(net.model.param('col1/conv1/kernel').trainable).toBe(true);
    const history = await net.train('b', dataB, { maxSteps: 3 });
    expect(history.steps).toBe(3);
    expect(bits(net.predict(probe, 'a'))).toEqual(first);
    expect(net.predict(probe, 'b').shape).toEqual([8, 2]);
    tf.dispose(net.predict(probe, 'b'));
    expect(tf.memory().numTensors).toBeGreaterThan(tensorsBefore); // the new column's parameters and Adam moments
    net.dispose();
    tf.dispose([probe, dataA.x, dataA.y, dataB.x, dataB.y]);
  });

  it('a multi-column network saves and loads with identical outputs for every task', async () => {
    const net = ProgressiveNet.create(mlp(3), { task: 'x', seed: 4 });
    net.addColumn('y');
    net.addColumn(7);
    const data = { x: tf.randomNormal([40, 784], 0, 1, 'float32', 1), y: tf.tensor1d(Array.from({ length: 40 }, (_, i) => i % 3), 'int32') };
    await net.train(7, data, { maxSteps: 2 });
    const buffer = saveToBuffer(net.model);
    const loaded = ProgressiveNet.fromModel(loadFromBuffer(buffer, { registry: progressiveRegistry() }));
    expect(loaded.tasks).toEqual(['x', 'y', 7]);
    for (const task of net.tasks) expect(bits(loaded.predict(data.x as tf.Tensor, task))).toEqual(bits(net.predict(data.x as tf.Tensor, task)));
    expect(loaded.columnParams()).toEqual(net.columnParams());
    // The loaded network keeps growing.
    loaded.addColumn('z');
    expect(loaded.tasks).toHaveLength(4);
    net.dispose();
    loaded.dispose();
    tf.dispose([data.x as tf.Tensor, data.y]);
  });

  it('bad input gives typed errors and leaves the network exactly as it was', () => {
    const net = ProgressiveNet.create(mlp(2), { task: 'a', seed: 0 });
    const x = tf.zeros([2, 784]);
    const y = tf.zeros([2], 'int32');
    const graph = JSON.stringify(net.model.graph);
    const journal = net.model.journal.length;
    const tensors = tf.memory().numTensors;
    expectThrows(() => net.predict(x, 'nope'), 'UNKNOWN_TASK');
    expectThrows(() => net.evaluate({ x, y }, 3), 'UNKNOWN_TASK');
    // Three dense layers in column 0, two here: laterals cannot pair layer i-1 with layer i.
    const shallow: GraphDef = { inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }], nodes: [{ id: 'h', op: 'dense', inputs: ['x'], attrs: { units: 4 } }, { id: 'out', op: 'dense', inputs: ['h'], attrs: { units: 2 } }], outputs: ['out'] };
    expectThrows(() => addColumn(net, 'b', { graph: shallow }), 'SHAPE_MISMATCH');
    const otherInput = lenet300100({ inputs: 100, hidden: [4, 4], classes: 2 });
    expectThrows(() => addColumn(net, 'b', { graph: otherInput }), 'SHAPE_MISMATCH');
    // A conv column cannot take laterals from an MLP column's flat activations.
    expectThrows(() => addColumn(net, 'b', { graph: { ...lenet5({ filters: [2, 2], hidden: [4, 4], classes: 2 }), inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }] } }), 'SHAPE_MISMATCH');
    expectThrows(() => addColumn(net, 'a'), 'INVALID_ARGUMENT');
    expectThrows(() => addColumn(net, 1.5), 'INVALID_ARGUMENT');
    expect(JSON.stringify(net.model.graph)).toBe(graph);
    expect(net.model.journal).toHaveLength(journal);
    expect(net.tasks).toEqual(['a']);
    expect(tf.memory().numTensors).toBe(tensors);
    // A column with a different but fitting architecture is accepted (wider layers).
    addColumn(net, 'b', { graph: lenet300100({ hidden: [32, 8], classes: 2 }) });
    expect(net.model.param('col1/fc2.lat0.proj/kernel').value.shape).toEqual([16, 16]);
    expect(net.model.param('col1/fc2.lat0.u/kernel').value.shape).toEqual([16, 8]);
    tf.dispose([x, y]);
    net.dispose();
  });

  it('removing weak laterals is one journaled edit; a lateral with alpha = 0 is removed without changing any output', () => {
    const net = ProgressiveNet.create(mlp(2), { task: 0, seed: 5 });
    net.addColumn(1);
    net.addColumn(2);
    const x = tf.randomNormal([6, 784], 0, 1, 'float32', 2);
    const weak = 'col2/fc3.lat1.scale/alpha';
    net.model.edit((tx) => tx.setParam(weak, tf.zeros([1])));
    const outputs = net.tasks.map((t) => bits(net.predict(x, t)));
    const lateralsBefore = net.laterals(2).length;
    expect(lateralsBefore).toBe(4); // layers fc2, fc3 x columns 0, 1
    const paramsBefore = net.model.counts().params;
    const { removed, entry } = removeWeakLaterals(net, 2, { threshold: 1e-12 });
    expect(removed.map((l) => l.ids.lateral)).toEqual(['col2/fc3.lat1.u']);
    expect(entry?.technique).toBe('progressive');
    expect(entry?.params.after).toBe(paramsBefore - removed[0].params);
    expect(net.laterals(2)).toHaveLength(3);
    net.tasks.forEach((t, i) => expect(bits(net.predict(x, t))).toEqual(outputs[i]));
    // Remove the rest of column 2's laterals: its sums disappear and layers read their own outputs.
    removeWeakLaterals(net, 2, { fraction: 1 });
    expect(net.laterals(2)).toHaveLength(0);
    expect(net.model.graph.nodes.some((n) => n.id.startsWith('col2/') && n.id.endsWith('.sum'))).toBe(false);
    expect(net.outputOf(2)).toBe('col2/fc3');
    expect(bits(net.predict(x, 1))).toEqual(outputs[1]);
    expectThrows(() => removeWeakLaterals(net, 1, { fraction: 2 }), 'INVALID_ARGUMENT');
    x.dispose();
    net.dispose();
  });
});

describe('continualMetrics', () => {
  it('computes ACC, BWT and FWT as defined by Lopez-Paz & Ranzato (2017)', () => {
    // R[i][j]: accuracy on task j after task i. Worked by hand:
    // ACC = (0.5 + 0.6 + 0.9) / 3; BWT = ((0.5 - 0.9) + (0.6 - 0.8)) / 2; FWT = ((0.55 - 0.5) + (0.6 - 0.5)) / 2.
    const m = continualMetrics(
      [
        [0.9, 0.55, null],
        [0.7, 0.8, 0.6],
        [0.5, 0.6, 0.9],
      ],
      [0.5, 0.5, 0.5],
    );
    expect(m.acc).toBeCloseTo(2 / 3, 12);
    expect(m.bwt).toBeCloseTo(-0.3, 12);
    expect(m.fwt).toBeCloseTo(0.075, 12);
    expectThrows(() => continualMetrics([[0.9, null], [null, 0.8]]), 'INVALID_ARGUMENT');
  });
});
