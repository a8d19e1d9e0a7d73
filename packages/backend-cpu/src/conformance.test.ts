import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '@rs/core';
import { conformanceCases, checkConformance, type ConformanceCase } from '@rs/core/testing';
import { install } from './index';

type KernelConfig = { kernelName: string; backendName: string; kernelFunc: (args: any) => any; setupFunc?: unknown };
type TensorInfo = { dataId: object; shape: number[]; dtype: string };
const kernels = tf as unknown as {
  getKernelsForBackend(name: string): KernelConfig[];
  registerKernel(config: KernelConfig): void;
};

/**
 * Registers `name`: the cpu backend with every cpu kernel, except that `kernelName` multiplies
 * its result by 1.001, a deliberately wrong kernel. Stands in for a backend under test.
 */
async function registerBrokenCpu(name: string, kernelName: string): Promise<void> {
  const Cpu = (tf.findBackend('cpu') as object).constructor as new () => tf.KernelBackend;
  tf.registerBackend(name, () => new Cpu());
  for (const k of kernels.getKernelsForBackend('cpu')) {
    const kernelFunc =
      k.kernelName !== kernelName
        ? k.kernelFunc
        : (args: any) => {
            const out = k.kernelFunc(args) as TensorInfo;
            const values = (args.backend.readSync(out.dataId) as Float32Array).map((v) => v * 1.001);
            args.backend.disposeData(out.dataId);
            return { dataId: args.backend.write(values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype };
          };
    kernels.registerKernel({ ...k, backendName: name, kernelFunc });
  }
  await tf.setBackend(name);
  // Silence the banner recommending tfjs-node, as install() does for cpu.
  const backend = tf.findBackend(name) as unknown as { firstUse?: boolean };
  if ('firstUse' in backend) backend.firstUse = false;
}

beforeAll(async () => {
  await install();
  // Wrong forward (Relu) and wrong gradient only (the conv2d filter gradient).
  await registerBrokenCpu('cpu-bad-relu', 'Relu');
  await registerBrokenCpu('cpu-bad-conv-filter-grad', 'Conv2DBackpropFilter');
  await tf.setBackend('cpu');
});

const cases = conformanceCases();

// What every backend package runs: every case of every built-in op, forward and gradients.
describe('conformance: cpu against cpu (the reference against itself)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const result = checkConformance(c, { backend: 'cpu', reference: 'cpu' });
      expect(result.ok, result.report).toBe(true);
    });
  }
});

describe('the suite catches a wrong kernel', () => {
  const check = (backend: string) => (c: ConformanceCase) => ({ c, result: checkConformance(c, { backend, reference: 'cpu' }) });

  it('a wrong forward kernel fails exactly the cases that use it, naming the output', () => {
    const results = cases.filter((c) => ['relu', 'dense', 'tanh'].includes(c.op)).map(check('cpu-bad-relu'));
    for (const { c, result } of results) {
      expect(result.ok, result.report).toBe(c.op !== 'relu');
      if (c.op === 'relu') expect(result.report).toMatch(/^relu #\d.*cpu-bad-relu vs cpu.*FAILED.*worst output \[[\d, ]+\] at \[[\d, ]+\]: cpu-bad-relu /);
    }
    expect(tf.getBackend()).toBe('cpu');
  });

  it('a wrong gradient kernel fails on that gradient only', () => {
    const results = cases.filter((c) => c.op === 'conv2d' || c.op === 'maxPool2d').map(check('cpu-bad-conv-filter-grad'));
    for (const { c, result } of results) {
      expect(result.ok, result.report).toBe(c.op !== 'conv2d');
      if (c.op !== 'conv2d') continue;
      expect(result.report).toMatch(/worst d param kernel /);
      const error = (tensor: string) => result.tensors.find((t) => t.tensor === tensor)?.maxError;
      expect(error('output')).toBe(0);
      expect(error('d input 0')).toBe(0);
      expect(error('d param kernel')).toBeGreaterThan(1);
    }
  });
});
