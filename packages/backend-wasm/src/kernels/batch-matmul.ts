import { DENSE_KERNEL } from '@rs/core';
import { getKernel, replaceKernel } from './registry';
import type { KernelBackendLike, KernelConfig, KernelFunc, TensorInfo } from './types';

/**
 * The wasm BatchMatMul takes XNNPACK's fast path only when neither operand is transposed; a
 * transposed operand falls back to a naive loop 20-40x slower, and every matmul gradient has
 * one (measured on this project's 2-core machine). Transposing the operand first with the wasm Transpose
 * kernel keeps every matmul on the fast path.
 *
 * XNNPACK packs its second operand (the "weights") for every new tensor: about 3 ns per value
 * here, eight times a transpose's cost per value. A weight gradient `x^T dy` (x [K, m], dy [K, n],
 * K the batch rows) packs dy, K * n values; when n is at least twice m (the first layer of a
 * feed-forward block: 128 -> 512), it is computed as `(dy^T x)^T` instead, which packs x (K * m)
 * and transposes dy and the small [n, m] product: 3.3 -> 3.0 ms for [1024, 128]^T [1024, 512].
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
      if (name === 'BatchMatMul' && attrs.transposeA && !attrs.transposeB && packSmallerBySwap(args.inputs.a, args.inputs.b)) {
        // out = a^T b = (b^T a)^T: a becomes the packed operand.
        const bT = transpose(args.inputs.b, args.backend);
        let product: TensorInfo | undefined;
        try {
          product = original.kernelFunc({ ...args, inputs: { a: bT, b: args.inputs.a }, attrs: { ...attrs, transposeA: false, transposeB: false } }) as TensorInfo;
          return transpose(product, args.backend);
        } finally {
          args.backend.disposeData(bT.dataId);
          if (product) args.backend.disposeData(product.dataId);
        }
      }
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

/** a [..., K, m], b [..., K, n] with no batch (every leading dimension 1), and n >= 2m. */
function packSmallerBySwap(a: TensorInfo, b: TensorInfo): boolean {
  if (a.shape.length < 2 || b.shape.length < 2 || a.dtype !== 'float32' || b.dtype !== 'float32') return false;
  const single = (shape: number[]) => shape.slice(0, -2).every((d) => d === 1);
  const m = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  return single(a.shape) && single(b.shape) && a.shape.length === b.shape.length && m > 0 && n >= 2 * m;
}

/**
 * Core's dense kernel (DENSE_KERNEL: `_FusedMatMul` with rank-2 operands) over the registered
 * `_FusedMatMul`, looked up at each call so that it runs whichever one the other patches left.
 * The wasm kernel reads its operands as rank 3: they get a leading 1 here as plain shape
 * metadata (a reshape is no more than that), which spares core three reshapes per dense layer.
 */
export function registerDenseKernel(backendName: string): string[] {
  const kernelFunc: KernelFunc = (args) => {
    const fused = getKernel('_FusedMatMul', backendName);
    if (!fused) throw new Error(`[NO_BACKEND] ${DENSE_KERNEL}: no _FusedMatMul kernel is registered for '${backendName}'.`);
    const { a, b } = args.inputs;
    const out = fused.kernelFunc({ ...args, inputs: { ...args.inputs, a: { ...a, shape: [1, ...a.shape] }, b: { ...b, shape: [1, ...b.shape] } } }) as TensorInfo;
    return { ...out, shape: out.shape.slice(1) };
  };
  replaceKernel({ kernelName: DENSE_KERNEL, backendName, kernelFunc });
  return [DENSE_KERNEL];
}
