/**
 * BatchMatMul and _FusedMatMul (matmul + bias + activation in one call). The product goes to
 * the system BLAS (or the own blocked SIMD GEMM); bias and activation are applied in the same
 * native call on the output while it is in cache. Transposed operands are passed to GEMM as
 * flags, never materialised. Batched products (attention) run one product per thread.
 */
import { tf, DENSE_KERNEL } from '@rs/core';
import { allFloat32, f32, native, output, sizeOf, withFallback, type KernelArgs, type KernelConfig, type TensorInfo } from './common';

/** Activation codes of rs_fused_matmul (native/rsnative.c). prelu falls back to cpu. */
export const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, elu: 4, leakyrelu: 5 };

interface Plan {
  batchA: number;
  batchB: number;
  M: number;
  N: number;
  K: number;
  outShape: number[];
}

/** Shapes of a (batched) product, or undefined for a batch broadcast native code lacks. */
function plan(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): Plan | undefined {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const K2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== K2) return undefined; // the cpu kernel reports the mismatch
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined; // the cpu kernel reports it
  }
  const batch = sizeOf(outer);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  // Native code broadcasts a whole operand (batch 1) only, not single batch dimensions.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return undefined;
  return { batchA, batchB, M, N, K, outShape: [...outer, M, N] };
}

function batchMatMul({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { a, b } = inputs;
  if (!a || !b || !allFloat32(backend, a, b)) return undefined;
  const transposeA = Boolean(attrs?.transposeA);
  const transposeB = Boolean(attrs?.transposeB);
  const p = plan(a, b, transposeA, transposeB);
  if (!p) return undefined;
  const out = output(sizeOf(p.outShape));
  const { lib, useBlas } = native();
  lib.matmul(f32(backend, a), f32(backend, b), out, p.batchA, p.batchB, p.M, p.N, p.K, transposeA ? 1 : 0, transposeB ? 1 : 0, useBlas);
  return backend.makeTensorInfo(p.outShape, 'float32', out);
}

/** 0 no bias, 1 a scalar, 2 one value per output column; undefined for any other broadcast. */
export function biasMode(bias: TensorInfo | undefined, N: number): number | undefined {
  if (!bias) return 0;
  const n = sizeOf(bias.shape);
  if (n === 1) return 1;
  const last = bias.shape[bias.shape.length - 1];
  return last === N && n === N ? 2 : undefined;
}

function fusedMatMul({ inputs, backend, attrs }: KernelArgs): TensorInfo | undefined {
  const { a, b, bias, preluActivationWeights } = inputs;
  if (preluActivationWeights || !a || !b || !allFloat32(backend, a, b)) return undefined;
  if (bias && !allFloat32(backend, bias)) return undefined;
  const act = ACTIVATIONS[String(attrs?.activation ?? 'linear')];
  if (act === undefined) return undefined;
  const transposeA = Boolean(attrs?.transposeA);
  const transposeB = Boolean(attrs?.transposeB);
  const p = plan(a, b, transposeA, transposeB);
  if (!p) return undefined;
  const mode = biasMode(bias, p.N);
  if (mode === undefined || (bias && bias.shape.length > p.outShape.length)) return undefined;
  const out = output(sizeOf(p.outShape));
  const { lib, useBlas } = native();
  const alpha = Number(attrs?.leakyreluAlpha ?? 0.2);
  lib.fusedMatmul(f32(backend, a), f32(backend, b), out, p.batchA, p.batchB, p.M, p.N, p.K, transposeA ? 1 : 0, transposeB ? 1 : 0, bias ? f32(backend, bias) : null, mode, act, alpha, useBlas);
  return backend.makeTensorInfo(p.outShape, 'float32', out);
}

export function matmulKernels(backendName: string): KernelConfig[] {
  const fused = withFallback('_FusedMatMul', fusedMatMul);
  return [
    { kernelName: 'BatchMatMul', backendName, kernelFunc: withFallback('BatchMatMul', batchMatMul) },
    { kernelName: '_FusedMatMul', backendName, kernelFunc: fused },
    // Core's dense kernel: the same kernel, which takes rank-2 operands as they are.
    { kernelName: DENSE_KERNEL, backendName, kernelFunc: fused },
  ];
}
