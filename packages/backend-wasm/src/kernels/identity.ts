import { getKernel, replaceKernel } from './registry';
import type { KernelBackendLike, KernelFunc } from './types';

/**
 * Identity (tf.clone, every customGrad output, gradient pass-throughs: 232 calls in a character
 * transformer's training step) shares the input's storage, as Reshape does and as the cpu
 * backend's Identity does, instead of copying it: tensors are immutable and no kernel writes
 * into an input, so a second reference is enough. Strings stay on the stock kernel.
 */
export function patchIdentity(backendName: string): boolean {
  const original = getKernel('Identity', backendName);
  if (!original) return false;
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs;
    const backend = args.backend as KernelBackendLike & { incRef?(dataId: object): void };
    if (x.dtype === 'string' || typeof backend.incRef !== 'function') return original.kernelFunc(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
  replaceKernel({ ...original, kernelFunc });
  return true;
}
