import { getKernel, replaceKernel } from './registry';
import type { KernelBackendLike, KernelConfig, KernelFunc, TensorInfo } from './types';

/**
 * The wasm BatchMatMul takes XNNPACK's fast path only when neither operand is transposed; a
 * transposed operand falls back to a naive loop 20-40x slower, and every matmul gradient has
 * one (measured on this project's 2-core machine). Transposing the operand first with the wasm Transpose
 * kernel keeps every matmul on the fast path.
 */
export function patchTransposedMatMul(backendName: string): string[] {
  const patched: string[] = [];
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const original = getKernel(name, backendName);
    if (!original) continue;
    const transpose = (x: TensorInfo, backend: KernelBackendLike): TensorInfo => {
      const rank = x.shape.length;
      const perm = [...Array(rank).keys()];
      [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
      const config = getKernel('Transpose', backendName) as KernelConfig;
      return config.kernelFunc({ inputs: { x }, backend, attrs: { perm } }) as TensorInfo;
    };
    const kernelFunc: KernelFunc = (args) => {
      const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args);
      const temporaries: TensorInfo[] = [];
      const inputs = { ...args.inputs };
      if (attrs.transposeA) {
        inputs.a = transpose(args.inputs.a, args.backend);
        temporaries.push(inputs.a);
      }
      if (attrs.transposeB) {
        inputs.b = transpose(args.inputs.b, args.backend);
        temporaries.push(inputs.b);
      }
      try {
        return original.kernelFunc({ ...args, inputs, attrs: { ...attrs, transposeA: false, transposeB: false } });
      } finally {
        for (const t of temporaries) args.backend.disposeData(t.dataId);
      }
    };
    replaceKernel({ ...original, kernelFunc });
    patched.push(name);
  }
  return patched;
}
