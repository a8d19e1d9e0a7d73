import { getKernel, replaceKernel } from './registry';
import type { HeapBackend, KernelFunc } from './types';

/**
 * The wasm fused kernels (_FusedMatMul, FusedConv2D, FusedDepthwiseConv2D) check the rank of
 * the bias's *storage*, not of the tensor: a rank-1 bias that is a reshape of a larger buffer
 * (what a unit edit leaves behind: the kept units gathered as [outer, n, inner] and reshaped)
 * is rejected ("only supports rank-1 bias but got rank 4"). Such a bias is copied into a
 * buffer of its own first. Core fuses every dense and conv2d bias, so this is on the main path.
 */
export function patchFusedBias(backendName: string): string[] {
  const patched: string[] = [];
  for (const name of ['_FusedMatMul', 'FusedConv2D', 'FusedDepthwiseConv2D']) {
    const original = getKernel(name, backendName);
    if (!original) continue;
    const kernelFunc: KernelFunc = (args) => {
      const bias = args.inputs.bias;
      const backend = args.backend as HeapBackend & { dataIdMap?: { get(id: object): { shape: number[] } | undefined } };
      const stored = bias && backend.dataIdMap?.get(bias.dataId);
      if (!bias || !stored || stored.shape.length === 1 || bias.shape.length !== 1 || typeof backend.typedArrayFromHeap !== 'function') {
        return original.kernelFunc(args);
      }
      const copy = backend.makeOutput([...bias.shape], bias.dtype);
      (backend.typedArrayFromHeap(copy) as Float32Array).set(backend.typedArrayFromHeap(bias) as Float32Array);
      try {
        return original.kernelFunc({ ...args, inputs: { ...args.inputs, bias: copy } });
      } finally {
        backend.disposeData(copy.dataId);
      }
    };
    replaceKernel({ ...original, kernelFunc });
    patched.push(name);
  }
  return patched;
}
