import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '@rs/core';
import { conformanceCases, checkConformance } from '@rs/core/testing';
import { install } from './index';

type KernelConfig = { kernelName: string; backendName: string; kernelFunc: (args: any) => any; setupFunc?: unknown };
const engine = tf as unknown as {
  getKernelsForBackend(name: string): KernelConfig[];
  registerKernel(config: KernelConfig): void;
};

beforeAll(async () => {
  await install();
  // A second backend that is the cpu backend with one wrong kernel (Relu off by 1e-3), to show
  // that the suite catches a broken kernel.
  const Cpu = (tf.findBackend('cpu') as object).constructor as new () => tf.KernelBackend;
  tf.registerBackend('broken-cpu', () => new Cpu());
  for (const k of engine.getKernelsForBackend('cpu')) {
    const kernelFunc = k.kernelName === 'Relu' ? (args: any) => {
      const out = k.kernelFunc(args);
      const values = (args.backend.readSync(out.dataId) as Float32Array).map((v: number) => v + 1e-3);
      args.backend.disposeData(out.dataId);
      return { dataId: args.backend.write(values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype };
    } : k.kernelFunc;
    engine.registerKernel({ ...k, backendName: 'broken-cpu', kernelFunc });
  }
  await tf.setBackend('broken-cpu');
  await tf.setBackend('cpu');
});

describe('conformance of the reference backend', () => {
  for (const c of conformanceCases()) {
    it(c.name, () => {
      const result = checkConformance(c, { backend: 'cpu', reference: 'cpu' });
      expect(result.ok, result.report).toBe(true);
    });
  }

  it('catches a broken kernel', () => {
    const reluCases = conformanceCases().filter((c) => c.op === 'relu' || c.op === 'dense');
    const results = reluCases.map((c) => checkConformance(c, { backend: 'broken-cpu', reference: 'cpu' }));
    expect(results.some((r) => !r.ok)).toBe(true);
    expect(results.every((r, i) => r.ok === (reluCases[i].op !== 'relu'))).toBe(true);
  });
});
