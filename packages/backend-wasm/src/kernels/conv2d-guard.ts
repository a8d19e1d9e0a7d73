import { RsError } from '@rs/core';
import { getKernel, replaceKernel } from './registry';
import { strides2, type KernelFunc } from './types';

/**
 * The inference runtime's Conv2D: stock wasm Conv2D is wrong with 'same' padding when a stride
 * exceeds the kernel size along an axis (./conv2d.ts); the full backend sends those calls to
 * the cpu kernel, which the runtime does not ship, so it refuses them (UNSUPPORTED_RUNTIME)
 * instead of giving wrong values.
 */
export function guardConv2D(backendName: string): void {
  const original = getKernel('Conv2D', backendName);
  if (!original) return;
  const kernelFunc: KernelFunc = (args) => {
    const attrs = (args.attrs ?? {}) as { pad?: unknown; strides?: number | [number, number] };
    const [kh, kw] = args.inputs.filter.shape;
    const [sh, sw] = strides2(attrs.strides);
    if (attrs.pad === 'same' && (sh > kh || sw > kw)) {
      throw new RsError(
        'UNSUPPORTED_RUNTIME',
        `Conv2D with 'same' padding, a ${kh}x${kw} kernel and strides ${sh}x${sw} (a stride larger than the kernel) is computed wrongly by stock wasm; the full @rs/backend-wasm computes it on its cpu kernel, @rs/backend-wasm/runtime does not ship one.`,
        { kernel: 'Conv2D', filter: [kh, kw], strides: [sh, sw] },
      );
    }
    return original.kernelFunc(args);
  };
  replaceKernel({ ...original, kernelFunc });
}
