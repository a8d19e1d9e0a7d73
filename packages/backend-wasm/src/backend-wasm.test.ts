import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { tf, Model, lenet5, lenet300100, charTransformer, computeGradients, softmaxCrossEntropy, disposeGradients, DENSE_KERNEL } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install, threadsCount } from './index';

const here = dirname(fileURLToPath(import.meta.url));

beforeAll(async () => {
  await installCpu({ activate: false });
  await install({ threads: 2 });
});

/** Runs `body` on `backend`, returning plain arrays. */
async function on<T>(backend: string, body: () => T): Promise<T> {
  const previous = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return body();
  } finally {
    await tf.setBackend(previous);
  }
}

describe('@rs/backend-wasm', () => {
  it('runs threaded in Node', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(threadsCount()).toBe(2);
  });

  it('the Conv2DBackpropFilter loop equals the cpu kernel (strides, paddings, kernel sizes)', async () => {
    const cases: Array<{ x: number[]; k: [number, number, number, number]; strides: [number, number]; pad: 'same' | 'valid' | number }> = [
      { x: [2, 9, 9, 3], k: [3, 3, 3, 4], strides: [1, 1], pad: 'same' },
      { x: [2, 9, 7, 3], k: [3, 3, 3, 4], strides: [2, 2], pad: 'same' },
      { x: [1, 10, 10, 2], k: [5, 3, 2, 3], strides: [2, 1], pad: 'valid' },
      { x: [3, 8, 8, 4], k: [1, 1, 4, 5], strides: [1, 1], pad: 'same' },
      { x: [1, 11, 11, 2], k: [3, 3, 2, 2], strides: [3, 3], pad: 'same' },
      { x: [2, 6, 6, 2], k: [3, 3, 2, 3], strides: [1, 1], pad: 1 },
    ];
    for (const c of cases) {
      const run = () =>
        tf.tidy(() => {
          const size = c.x.reduce((a, b) => a * b, 1);
          const x = tf.tensor(Array.from({ length: size }, (_, i) => (i % 7 === 0 ? 0 : Math.sin(i * 0.7))), c.x);
          const y = tf.conv2d(x as tf.Tensor4D, tf.zeros(c.k) as tf.Tensor4D, c.strides, c.pad);
          const dy = tf.tensor(Array.from({ length: y.size }, (_, i) => Math.cos(i * 0.3)), y.shape);
          const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: c.k };
          const engine = tf.engine() as unknown as { runKernel(name: string, inputs: object, attrs: object): tf.Tensor };
          return Array.from(engine.runKernel('Conv2DBackpropFilter', { x, dy }, attrs).dataSync());
        });
      const [wasm, cpu] = [await on('wasm', run), await on('cpu', run)];
      expect(wasm.length).toBe(cpu.length);
      for (let i = 0; i < cpu.length; i++) expect(Math.abs(wasm[i] - cpu[i]), JSON.stringify(c)).toBeLessThan(1e-4 * (1 + Math.abs(cpu[i])));
    }
  });

  it('the block-copy GatherV2 equals cpu (axes, batch dims, int32, repeated indices) and rejects out-of-range indices', async () => {
    const cases: Array<{ x: number[]; dtype: 'float32' | 'int32'; indices: number[]; indexShape: number[]; axis: number; batchDims: number }> = [
      { x: [20, 16], dtype: 'float32', indices: [3, 0, 19, 3, 7], indexShape: [5], axis: 0, batchDims: 0 },
      { x: [6, 4, 3, 12], dtype: 'float32', indices: [1, 1, 0, 3, 2, 0], indexShape: [2, 3], axis: 1, batchDims: 0 },
      { x: [4, 5, 16], dtype: 'int32', indices: [4, 0, 2, 1, 3, 3, 0, 4], indexShape: [4, 2], axis: 1, batchDims: 1 },
      { x: [3, 10, 9], dtype: 'float32', indices: [9, 2], indexShape: [2], axis: -2, batchDims: 0 },
      { x: [64, 8, 32], dtype: 'float32', indices: [63], indexShape: [1], axis: 0, batchDims: 0 },
      { x: [5, 3], dtype: 'float32', indices: [2, 2, 0], indexShape: [3], axis: 1, batchDims: 0 }, // short slices: stock kernel
    ];
    for (const c of cases) {
      const run = () =>
        tf.tidy(() => {
          const size = c.x.reduce((a, b) => a * b, 1);
          const values = Array.from({ length: size }, (_, i) => (c.dtype === 'int32' ? (i * 7919) % 1000 : Math.sin(i * 0.37)));
          const x = tf.tensor(values, c.x, c.dtype);
          const y = tf.gather(x, tf.tensor(c.indices, c.indexShape, 'int32'), c.axis, c.batchDims);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        });
      const [wasm, cpu] = [await on('wasm', run), await on('cpu', run)];
      expect(wasm.shape, JSON.stringify(c)).toEqual(cpu.shape);
      expect(wasm.values, JSON.stringify(c)).toEqual(cpu.values);
    }
    const tensors = tf.memory().numTensors;
    const x = tf.ones([4, 16]);
    const bad = tf.tensor1d([1, 4], 'int32');
    expect(() => tf.gather(x, bad)).toThrow(/index value 4 is not in \[0, 3\]/);
    tf.dispose([x, bad]);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('fused matmul and conv accept a rank-1 bias stored as a reshape of a larger buffer (what unit edits leave)', async () => {
    const run = () =>
      tf.tidy(() => {
        const bias = tf.reshape(tf.tensor4d([0.5, -1, 2, 0.25], [1, 2, 1, 2]), [4]);
        const a = tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i)), [3, 4]);
        const b = tf.tensor2d(Array.from({ length: 16 }, (_, i) => Math.cos(i)), [4, 4]);
        const mm = tf.fused.matMul({ a, b, bias });
        const x = tf.tensor4d(Array.from({ length: 2 * 5 * 5 * 3 }, (_, i) => Math.sin(i * 0.3)), [2, 5, 5, 3]);
        const filter = tf.tensor4d(Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i * 0.2)), [3, 3, 3, 4]);
        const conv = tf.fused.conv2d({ x, filter, strides: 1, pad: 'same', bias });
        return [...mm.dataSync(), ...conv.dataSync()];
      });
    const [wasm, cpu] = [await on('wasm', run), await on('cpu', run)];
    expect(wasm.length).toBe(cpu.length);
    for (let i = 0; i < cpu.length; i++) expect(Math.abs(wasm[i] - cpu[i])).toBeLessThan(1e-4 * (1 + Math.abs(cpu[i])));
  });

  it("core's dense kernel (rank-2 operands over the wasm _FusedMatMul) runs inference, equals cpu, with and without bias and relu, and leaks nothing", async () => {
    const graph = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' as const }],
      nodes: [
        { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 5 } },
        { id: 'r', op: 'relu', inputs: ['a'], attrs: {} },
        { id: 'b', op: 'dense', inputs: ['r'], attrs: { units: 4, useBias: false } },
        { id: 'r2', op: 'relu', inputs: ['b'], attrs: {} },
        { id: 'c', op: 'dense', inputs: ['r2'], attrs: { units: 3 } },
      ],
      outputs: ['c'],
    };
    const run = async (backend: string) =>
      on(backend, async () => {
        const model = Model.create(graph, { seed: 2 });
        const input = tf.tensor2d(Array.from({ length: 18 }, (_, i) => Math.sin(i * 0.7)), [3, 6]);
        const names = (await tf.profile(() => model.apply(input).dispose())).kernels.map((k) => k.name);
        const before = tf.memory().numTensors;
        const y = model.apply(input);
        const values = { shape: y.shape, data: Array.from(y.dataSync()), names };
        y.dispose();
        expect(tf.memory().numTensors).toBe(before);
        input.dispose();
        model.dispose();
        return values;
      });
    const wasm = await run('wasm');
    const cpu = await run('cpu');
    expect(wasm.names).toEqual([DENSE_KERNEL, DENSE_KERNEL, DENSE_KERNEL]);
    expect(wasm.shape).toEqual([3, 3]);
    expect(wasm.shape).toEqual(cpu.shape);
    for (let i = 0; i < cpu.data.length; i++) expect(Math.abs(wasm.data[i] - cpu.data[i])).toBeLessThan(1e-4 * (1 + Math.abs(cpu.data[i])));
  });

  it('a unit edit leaves every parameter stored with its own shape (no per-call bias copy, XNNPACK operators stay cached)', async () => {
    const stored = (t: tf.Tensor) => (tf.backend() as unknown as { dataIdMap: { get(id: object): { shape: number[] } } }).dataIdMap.get(t.dataId).shape;
    const gathered = tf.gather(tf.tensor1d([1, 2, 3, 4, 5]), tf.tensor1d([4, 0, 2], 'int32'));
    expect(stored(gathered)).toEqual([3]);
    expect(Array.from(gathered.dataSync())).toEqual([5, 1, 3]);
    const rows = tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]), tf.tensor1d([2, 0], 'int32'), 1 - 1);
    expect(stored(rows)).toEqual([2, 2]);
    expect(Array.from(rows.dataSync())).toEqual([5, 6, 1, 2]);
    const columns = tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), tf.tensor1d([2, 1], 'int32'), 1);
    expect(stored(columns)).toEqual([2, 2]);
    expect(Array.from(columns.dataSync())).toEqual([3, 2, 6, 5]);
    tf.dispose([gathered, rows, columns]);
    const model = Model.create(lenet300100(), { seed: 0 });
    model.edit((tx) => tx.removeUnits('fc1', [0, 5, 17, 299]), { reason: 'storage test' });
    for (const key of model.paramKeys()) expect(stored(model.param(key).value), key).toEqual(model.param(key).value.shape);
    model.dispose();
  });

  it('Identity (tf.clone) shares storage instead of copying, and the clone outlives its source', () => {
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor2d([1, -2, 3, 4.5], [2, 2]);
    const buffers = backend.numDataIds();
    const copy = tf.clone(x);
    expect(backend.numDataIds()).toBe(buffers);
    x.dispose();
    expect(Array.from(copy.dataSync())).toEqual([1, -2, 3, 4.5]);
    const doubled = tf.mul(copy, 2);
    expect(Array.from(doubled.dataSync())).toEqual([2, -4, 6, 9]);
    tf.dispose([copy, doubled]);
    expect(backend.numDataIds()).toBe(buffers - 1);
  });

  it('transposed matmuls (the fast path rewrite) equal cpu (rtol 1e-4, atol 1e-4)', async () => {
    const values = Array.from({ length: 48 * 40 }, (_, i) => Math.sin(i * 0.37));
    const other = Array.from({ length: 48 * 40 }, (_, i) => Math.cos(i * 0.11));
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const run = () =>
        tf.tidy(() => {
          const a = tf.tensor2d(values, ta ? [40, 48] : [48, 40]);
          const b = tf.tensor2d(other, tb ? [48, 40] : [40, 48]);
          return Array.from(tf.matMul(a, b, ta, tb).dataSync());
        });
      const got = await on('wasm', run);
      const want = await on('cpu', run);
      // |wasm - cpu| <= atol + rtol * |cpu|, with atol for entries that cancel to near zero.
      const bad = got.filter((g, i) => Math.abs(g - want[i]) > 1e-4 + 1e-4 * Math.abs(want[i]));
      expect(bad, `transposeA=${ta} transposeB=${tb}`).toEqual([]);
    }
    // a^T b with b at least twice as wide as a: computed as (b^T a)^T (a is the packed operand).
    for (const [aShape, bShape] of [[[40, 12], [40, 48]], [[1, 40, 7], [1, 40, 30]], [[40, 12], [40, 23]]]) {
      const run = () =>
        tf.tidy(() => {
          const a = tf.tensor(values.slice(0, aShape.reduce((p, d) => p * d, 1)), aShape);
          const b = tf.tensor(other.slice(0, bShape.reduce((p, d) => p * d, 1)), bShape);
          const y = tf.matMul(a, b, true, false);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        });
      const got = await on('wasm', run);
      const want = await on('cpu', run);
      expect(got.shape).toEqual(want.shape);
      const bad = got.values.filter((g, i) => Math.abs(g - want.values[i]) > 1e-4 + 1e-4 * Math.abs(want.values[i]));
      expect(bad, `${aShape}^T x ${bShape}`).toEqual([]);
    }
  });

  it('trains conv nets and embeddings: gradients that need filled-in kernels equal cpu', async () => {
    const gradients = (graph: ReturnType<typeof lenet5>, x: () => tf.Tensor, y: () => tf.Tensor) => {
      const model = Model.create(graph, { seed: 1 });
      try {
        const g = tf.tidy(() => {
          const g = computeGradients(model, [x()], y(), softmaxCrossEntropy);
          const out = Object.fromEntries([...g.grads].map(([k, t]) => [k, Array.from(t.dataSync())]));
          disposeGradients(g);
          return out as never;
        }) as unknown as Record<string, number[]>;
        return g;
      } finally {
        model.dispose();
      }
    };
    const conv = lenet5({ filters: [3, 4], hidden: [8, 8] });
    const cx = () => tf.tensor4d(Array.from({ length: 2 * 28 * 28 }, (_, i) => Math.sin(i)), [2, 28, 28, 1]);
    const cy = () => tf.tensor1d([3, 7], 'int32');
    const text = charTransformer({ vocabSize: 13, context: 6, dim: 8, heads: 2, layers: 1 });
    const tx = () => tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], [2, 6], 'int32');
    const ty = () => tf.tensor2d([[2, 3, 4, 5, 6, 7], [5, 4, 3, 2, 1, 0]], [2, 6], 'int32');
    for (const [graph, x, y] of [[conv, cx, cy], [text, tx, ty]] as const) {
      const got = await on('wasm', () => gradients(graph, x, y));
      const want = await on('cpu', () => gradients(graph, x, y));
      for (const key of Object.keys(want)) {
        const worst = Math.max(...got[key].map((g, i) => Math.abs(g - want[key][i]) / (1e-4 + Math.abs(want[key][i]))));
        expect(worst, key).toBeLessThan(1e-3);
      }
    }
  });

  it('a Node process using wasm threads exits by itself', () => {
    // The child runs the built package (the test command builds every package first).
    const child = spawnSync(process.execPath, [join(here, '..', 'test', 'exit-child.mjs')], {
      encoding: 'utf8',
      timeout: 60_000,
      cwd: join(here, '..'),
    });
    expect(child.error, 'the child did not exit within 60 s').toBeUndefined();
    expect(child.status, child.stderr).toBe(0);
    const report = JSON.parse(child.stdout.trim().split('\n').pop() as string);
    expect(report).toMatchObject({ backend: 'wasm', threads: 2 });
  });
});
