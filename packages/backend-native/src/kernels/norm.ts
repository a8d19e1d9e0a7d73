/**
 * Core's fused layer normalisation (LAYER_NORM_KERNEL and its gradient, see @rs/core's
 * layerNorm op): statistics, normalisation and the affine step in one pass over each row, and
 * the three gradients in two, instead of about 10 tfjs kernels forward and 25 backward.
 */
import { LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL } from '@rs/core';
import { allFloat32, f32, native, output, sizeOf, type KernelArgs, type KernelConfig, type TensorInfo } from './common';

/** Rows and width of a call, its shapes checked. */
function rowsOf(kernel: string, x: TensorInfo, gamma: TensorInfo): [number, number] {
  const d = x.shape[x.shape.length - 1];
  if (gamma.shape.length !== 1 || gamma.shape[0] !== d) throw new Error(`[INVALID_ARGUMENT] ${kernel} expects gamma of shape [${d}], got [${gamma.shape.join(', ')}].`);
  return [d === 0 ? 0 : sizeOf(x.shape) / d, d];
}

function layerNorm({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x, gamma, beta } = inputs;
  if (!x || !gamma || !beta || !allFloat32(backend, x, gamma, beta)) throw new Error(`[INVALID_ARGUMENT] ${LAYER_NORM_KERNEL} expects float32 x, gamma and beta.`);
  const [rows, d] = rowsOf(LAYER_NORM_KERNEL, x, gamma);
  const [y, mean, rstd] = [output(rows * d), output(rows), output(rows)];
  if (rows * d > 0) native().lib.layerNorm(f32(backend, x), f32(backend, gamma), f32(backend, beta), y, mean, rstd, rows, d, Number((attrs as { epsilon?: number })?.epsilon ?? 1e-5));
  return [backend.makeTensorInfo([...x.shape], 'float32', y), backend.makeTensorInfo([rows], 'float32', mean), backend.makeTensorInfo([rows], 'float32', rstd)];
}

function layerNormGrad({ inputs, backend }: KernelArgs): TensorInfo[] {
  const { dy, x, gamma, mean, rstd } = inputs;
  if (!dy || !x || !gamma || !mean || !rstd || !allFloat32(backend, dy, x, gamma, mean, rstd)) throw new Error(`[INVALID_ARGUMENT] ${LAYER_NORM_GRAD_KERNEL} expects float32 dy, x, gamma, mean and rstd.`);
  const [rows, d] = rowsOf(LAYER_NORM_GRAD_KERNEL, x, gamma);
  if (dy.shape.join() !== x.shape.join() || sizeOf(mean.shape) !== rows || sizeOf(rstd.shape) !== rows) throw new Error(`[INVALID_ARGUMENT] ${LAYER_NORM_GRAD_KERNEL} expects dy of x's shape and mean, rstd of ${rows} rows.`);
  const [dx, dgamma, dbeta] = [output(rows * d), output(d), output(d)];
  if (d > 0) native().lib.layerNormGrad(f32(backend, dy), f32(backend, x), f32(backend, gamma), f32(backend, mean), f32(backend, rstd), dx, dgamma, dbeta, rows, d);
  return [backend.makeTensorInfo([...x.shape], 'float32', dx), backend.makeTensorInfo([d], 'float32', dgamma), backend.makeTensorInfo([d], 'float32', dbeta)];
}

export function normKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: LAYER_NORM_KERNEL, backendName, kernelFunc: layerNorm },
    { kernelName: LAYER_NORM_GRAD_KERNEL, backendName, kernelFunc: layerNormGrad },
  ];
}
