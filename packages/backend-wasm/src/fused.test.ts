import { describe, it, expect, beforeAll } from 'vitest';
import { tf, Model, adam, charTransformer, softmaxCrossEntropy, trainStep, GELU_KERNEL, GELU_GRAD_KERNEL } from '@rs/core';
import { builtinOps, valueAndGrads } from '@rs/core/extend';
import { install as installCpu } from '@rs/backend-cpu';
import { install, simdKernelCalls } from './index';
import { withoutSimd } from './kernels/simd';

beforeAll(async () => {
  await installCpu({ activate: false });
  await install({ threads: 2 });
});

const layerNormSchema = builtinOps.find((op) => op.name === 'layerNorm') as unknown as { forward(xs: tf.Tensor[], params: Record<string, tf.Tensor>, attrs: object): tf.Tensor };
const layerNormOp = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => layerNormSchema.forward([x], { gamma, beta }, {});
const values = (n: number, seed: number, scale = 2) => Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * scale);
/** Both paths of a wasm kernel: the SIMD module, then the JavaScript fallback. */
const paths = [
  ['simd', <T>(body: () => T) => body()],
  ['fallback', <T>(body: () => T) => withoutSimd(tf.backend(), body)],
] as const;

async function on<T>(backend: string, body: () => T): Promise<T> {
  await tf.setBackend(backend);
  try {
    return body();
  } finally {
    await tf.setBackend('wasm');
  }
}

const close = (got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number) =>
  Array.from(want).flatMap((w, i) => (Math.abs(got[i] - w) <= atol + rtol * Math.abs(w) || (Number.isNaN(w) && Number.isNaN(got[i])) ? [] : [[i, got[i], w]]));

describe('@rs/backend-wasm: transpose and core fused kernels', () => {
  it('transposes of the last two axes equal cpu (float32 and int32, sizes off the 4x4 blocks and 32x32 tiles)', async () => {
    const before = simdKernelCalls().Transpose;
    const shapes = [[5, 7], [3, 33, 9], [2, 2, 40, 36], [1, 1]];
    for (const shape of shapes) {
      for (const dtype of ['float32', 'int32'] as const) {
        const n = shape.reduce((p, q) => p * q, 1);
        const perm = [...shape.keys()];
        [perm[shape.length - 2], perm[shape.length - 1]] = [perm[shape.length - 1], perm[shape.length - 2]];
        const run = () => tf.tidy(() => Array.from(tf.transpose(tf.tensor(values(n, 1, 1000).map(Math.round), shape, dtype), perm).dataSync()));
        expect(await on('wasm', run), `${shape} ${dtype}`).toEqual(await on('cpu', run));
      }
    }
    expect(simdKernelCalls().Transpose - before).toBe(2 * shapes.length);
  });

  for (const [path, run] of paths) {
    it(`GELU and its gradient equal the formula in double precision to 2e-6 (${path})`, () => {
      const xs = [...values(1001, 3, 6), 0, -0.5, 12, -12, 1e-4];
      const [y, dx] = run(() =>
        tf.tidy(() => {
          const x = tf.tensor1d(xs);
          const dy = tf.tensor1d(values(xs.length, 4, 1));
          return [Array.from((tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor).dataSync()), Array.from((tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x }) as tf.Tensor).dataSync())];
        }),
      );
      const s = Math.sqrt(2 / Math.PI);
      const dys = values(xs.length, 4, 1).map(Math.fround);
      const wantY = xs.map((v) => 0.5 * v * (1 + Math.tanh(s * (v + 0.044715 * v ** 3))));
      const wantDx = xs.map((v, i) => {
        const t = Math.tanh(s * (v + 0.044715 * v ** 3));
        return dys[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * s * (1 + 3 * 0.044715 * v * v));
      });
      expect(close(y, wantY, 2e-6, 2e-6)).toEqual([]);
      expect(close(dx, wantDx, 2e-6, 2e-6)).toEqual([]);
    });

    it(`a transformer trained 3 steps with Adam on wasm matches cpu's composed kernels (${path}), leaking nothing`, async () => {
      const train = () => {
        const model = Model.create(charTransformer({ vocabSize: 11, context: 6, dim: 8, heads: 2, layers: 1 }), { seed: 3 });
        const x = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], [2, 6], 'int32');
        // Class ids out of range (-1, 11) add nothing to the loss and get no gradient, as on cpu.
        const y = tf.tensor2d([[2, 3, 4, 5, 6, 7], [5, 4, 3, -1, 11, 0]], [2, 6], 'int32');
        const optimizer = adam({ learningRate: 1e-2, weightDecay: 0.1 });
        const tensors = tf.memory().numTensors;
        const losses = [0, 1, 2].map(() => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss);
        const params = Object.fromEntries(model.paramKeys().map((k) => [k, Array.from(model.param(k).value.dataSync())]));
        const slots = Object.fromEntries(model.paramKeys().map((k) => [k, [...model.optimizerSlots(k).values()].flatMap((t) => Array.from(t.dataSync()))]));
        const leaked = tf.memory().numTensors - tensors;
        model.dispose();
        tf.dispose([x, y]);
        return { losses, params, slots, leaked };
      };
      const before = simdKernelCalls();
      const wasm = await on('wasm', () => run(train));
      const after = simdKernelCalls();
      const cpu = await on('cpu', train);
      for (const name of ['RsAdamUpdate', 'RsSoftmaxCrossEntropy', 'RsSoftmaxCrossEntropyGrad', 'RsGelu', 'RsGeluGrad', 'RsLayerNorm', 'RsLayerNormGrad'] as const) {
        if (path === 'simd') expect(after[name] - before[name], name).toBeGreaterThan(0);
        else expect(after[name] - before[name], name).toBe(0);
      }
      expect(close(wasm.losses, cpu.losses, 1e-5, 1e-6)).toEqual([]);
      // The key bias is left out: softmax is invariant to it, its true gradient is 0 and the
      // computed one is rounding noise (1e-9), which Adam scales up to whole steps on any backend.
      const compared = Object.keys(cpu.params).filter((k) => !k.endsWith('attn/bk'));
      for (const key of compared) expect(close(wasm.params[key], cpu.params[key], 1e-4, 1e-5), key).toEqual([]);
      const slotsOf = (r: typeof cpu) => compared.flatMap((k) => r.slots[k]);
      expect(close(slotsOf(wasm), slotsOf(cpu), 1e-3, 1e-7)).toEqual([]);
      // The three updated parameters and their slots replace the old ones: nothing else stays.
      expect(wasm.leaked).toBe(cpu.leaked);
    });

    it(`layer norm and its gradients (x, gamma, beta) equal cpu's composed ops, widths off the vector blocks (${path})`, async () => {
      for (const shape of [[3, 5, 7], [4, 16], [2, 1]]) {
        const d = shape[shape.length - 1];
        const n = shape.reduce((p, q) => p * q, 1);
        const compute = () =>
          tf.tidy(() => {
            const x = tf.tensor(values(n, 7, 3), shape);
            const gamma = tf.tensor1d(values(d, 8, 1));
            const beta = tf.tensor1d(values(d, 9, 1));
            const weights = tf.tensor(values(n, 10, 1), shape);
            const { value, grads } = valueAndGrads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layerNormOp(a, g, b), weights)), [x, gamma, beta]);
            return [value, ...grads].map((t) => Array.from((t as tf.Tensor).dataSync()));
          });
        const before = simdKernelCalls().RsLayerNorm;
        const got = await on('wasm', () => run(compute));
        expect(simdKernelCalls().RsLayerNorm - before).toBe(path === 'simd' ? 1 : 0);
        const want = await on('cpu', compute);
        want.forEach((w, i) => expect(close(got[i], w, 1e-4, 1e-5), `${shape} output ${i}`).toEqual([]));
      }
    });

    it(`the fused loss is NaN for NaN logits and refuses labels of the wrong shape (${path})`, () => {
      const loss = run(() => tf.tidy(() => softmaxCrossEntropy(tf.tensor2d([[1, NaN, 0], [0, 1, 2]]), tf.tensor1d([0, 2], 'int32')).dataSync()[0]));
      expect(loss).toBeNaN();
      expect(() => run(() => tf.tidy(() => tf.engine().runKernel('RsSoftmaxCrossEntropy', { logits: tf.zeros([2, 3]), labels: tf.zeros([3], 'int32') })))).toThrow(/int32 labels of shape \[2\]/);
    });
  }
});
