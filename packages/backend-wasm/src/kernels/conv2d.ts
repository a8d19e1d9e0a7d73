import { cpuBridge } from './cpu-bridge';
import { getKernel, replaceKernel } from './registry';
import { strides2, type KernelFunc } from './types';

/**
 * Stock wasm Conv2D is wrong with 'same' padding when a stride exceeds the kernel size along an
 * axis (the padding it computes goes negative); found by the conformance suite. Those calls go
 * to the cpu kernel, every other one stays on XNNPACK.
 */
export function patchConv2D(backendName: string): void {
  const original = getKernel('Conv2D', backendName);
  const cpu = getKernel('Conv2D', 'cpu');
  if (!original || !cpu) return;
  const bridged = cpuBridge(cpu);
  const kernelFunc: KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as { pad?: unknown; strides?: number | [number, number] };
    const [kh, kw] = args.inputs.filter.shape;
    const [sh, sw] = strides2(attrs.strides);
    return attrs.pad === 'same' && (sh > kh || sw > kw) ? bridged(args) : original.kernelFunc(args);
  };
  replaceKernel({ ...original, kernelFunc });
}
