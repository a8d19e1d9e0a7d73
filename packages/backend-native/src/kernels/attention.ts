/**
 * Core's fused attention (ATTENTION_KERNEL and its gradient, see @rs/core's multiHeadAttention
 * op): scores, causal mask, softmax and mixing in one native call, the gradients of q, k and v in
 * another, on the projections' [N, T, H * headDim] layout (no head-split or merge transposes),
 * one (sample, head) pair per thread. Composed of tfjs kernels, the same takes about 15 forward
 * and 25 backward, with four transposes.
 */
import { ATTENTION_GRAD_KERNEL, ATTENTION_KERNEL } from '@rs/core';
import { allFloat32, f32, native, output, type KernelArgs, type KernelConfig, type TensorInfo } from './common';

/** N, T, H, headDim of a call, its shapes and attributes checked. */
function geometry(kernel: string, tensors: Record<string, TensorInfo | undefined>, names: string[], heads: unknown): [number, number, number, number] {
  const ts = names.map((name) => tensors[name]);
  const first = ts[0];
  if (!first || first.shape.length !== 3 || ts.some((t) => !t || t.shape.join() !== first.shape.join())) {
    throw new Error(`[INVALID_ARGUMENT] ${kernel} expects ${names.join(', ')} of one shape [N, T, heads * headDim], got ${ts.map((t) => (t ? `[${t.shape.join(', ')}]` : 'none')).join(', ')}.`);
  }
  const [n, t, w] = first.shape;
  const h = Number(heads);
  if (!Number.isInteger(h) || h < 1 || w % h !== 0) throw new Error(`[INVALID_ARGUMENT] ${kernel}: heads must be a positive integer dividing ${w}, got ${String(heads)}.`);
  return [n, t, h, w / h];
}

function attention({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { q, k, v } = inputs;
  const [n, t, h, d] = geometry(ATTENTION_KERNEL, inputs, ['q', 'k', 'v'], attrs?.heads);
  if (!allFloat32(backend, q, k, v)) throw new Error(`[INVALID_ARGUMENT] ${ATTENTION_KERNEL} expects float32 q, k and v.`);
  const out = output(n * t * h * d);
  const probs = output(n * h * t * t);
  if (n * t * h * d > 0) native().lib.attention(f32(backend, q!), f32(backend, k!), f32(backend, v!), out, probs, n, t, h, d, attrs?.causal ? 1 : 0, Number(attrs?.scale ?? 1 / Math.sqrt(d)));
  return [backend.makeTensorInfo([n, t, h * d], 'float32', out), backend.makeTensorInfo([n, h, t, t], 'float32', probs)];
}

function attentionGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, q, k, v, probs } = inputs;
  const [n, t, h, d] = geometry(ATTENTION_GRAD_KERNEL, inputs, ['dy', 'q', 'k', 'v'], attrs?.heads);
  if (!probs || probs.shape.join() !== [n, h, t, t].join() || !allFloat32(backend, dy, q, k, v, probs)) {
    throw new Error(`[INVALID_ARGUMENT] ${ATTENTION_GRAD_KERNEL} expects float32 dy, q, k, v and probs of shape [${n}, ${h}, ${t}, ${t}].`);
  }
  const [dq, dk, dv] = [output(n * t * h * d), output(n * t * h * d), output(n * t * h * d)];
  if (n * t * h * d > 0 && !native().lib.attentionGrad(f32(backend, dy!), f32(backend, q!), f32(backend, k!), f32(backend, v!), f32(backend, probs), dq, dk, dv, n, t, h, d, Number(attrs?.scale ?? 1 / Math.sqrt(d)))) {
    throw new Error(`[OUT_OF_MEMORY] @rs/backend-native: ${ATTENTION_GRAD_KERNEL} could not allocate its scratch rows.`);
  }
  return [dq, dk, dv].map((values) => backend.makeTensorInfo([n, t, h * d], 'float32', values));
}

export function attentionKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: ATTENTION_KERNEL, backendName, kernelFunc: attention },
    { kernelName: ATTENTION_GRAD_KERNEL, backendName, kernelFunc: attentionGrad },
  ];
}
