import { cpuBackend, getKernelsForBackend, removeKernel, replaceKernel } from './registry';
import type { KernelConfig, KernelFunc, TensorInfo } from './types';

/** A kernel that runs `cpuKernel` on copies of its inputs and writes the results back. */
export function cpuBridge(cpuKernel: KernelConfig): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpu = cpuBackend();
    const cpuInputs: Record<string, TensorInfo> = {};
    const created: object[] = [];
    try {
      for (const [name, t] of Object.entries(inputs)) {
        if (!t) continue;
        const dataId = cpu.write(backend.readSync(t.dataId) as ArrayLike<number>, t.shape, t.dtype);
        created.push(dataId);
        cpuInputs[name] = { dataId, shape: t.shape, dtype: t.dtype };
      }
      const out = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs });
      const outs = Array.isArray(out) ? out : [out];
      const results = outs.map((o) => {
        const values = cpu.readSync(o.dataId) as ArrayLike<number>;
        cpu.disposeData(o.dataId, true);
        return { dataId: backend.write(values, o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
      });
      return Array.isArray(out) ? results : results[0];
    } finally {
      for (const dataId of created) cpu.disposeData(dataId, true);
    }
  };
}

/**
 * Stock wasm kernels that give wrong results, found by the conformance suite; they are
 * replaced by the cpu bridge below. MaxPoolGrad drops the gradient of partial windows at the
 * right/bottom edge under 'same' padding (cpu, like TensorFlow, routes it to the window's max).
 */
export const WRONG_ON_WASM = ['MaxPoolGrad'] as const;

/**
 * Registers, for `backendName`, every kernel the cpu backend has and it lacks (for training:
 * Conv2DBackpropFilter, the depthwise backprops, UnsortedSegmentSum...). Each one copies its
 * inputs to the cpu backend, runs the cpu kernel, and writes the result back; values match cpu
 * exactly because they are cpu's.
 */
export function fillMissingKernels(backendName: string, replace: readonly string[] = []): string[] {
  for (const name of replace) removeKernel(name, backendName);
  const have = new Set(getKernelsForBackend(backendName).map((k) => k.kernelName));
  const added: string[] = [];
  for (const cpuKernel of getKernelsForBackend('cpu')) {
    if (have.has(cpuKernel.kernelName)) continue;
    const kernelFunc = cpuBridge(cpuKernel);
    replaceKernel({ kernelName: cpuKernel.kernelName, backendName, kernelFunc });
    added.push(cpuKernel.kernelName);
  }
  return added;
}
