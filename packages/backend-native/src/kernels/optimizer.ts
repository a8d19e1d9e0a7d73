/**
 * Core's fused Adam update (ADAM_UPDATE_KERNEL, see @rs/core's optimizers): the new parameter
 * and both moments of one parameter in one pass over memory, instead of the fourteen tfjs ops
 * (and fourteen temporaries) of the generic update.
 */
import { ADAM_UPDATE_KERNEL } from '@rs/core';
import { allFloat32, f32, native, output, sizeOf, type KernelArgs, type KernelConfig, type TensorInfo } from './common';

function adamUpdate({ inputs, backend, attrs }: KernelArgs): TensorInfo[] | undefined {
  const { p, g, m, v } = inputs;
  if (!p || !g || !m || !v || !allFloat32(backend, p, g, m, v)) return undefined;
  const shape = p.shape.join();
  if (g.shape.join() !== shape || m.shape.join() !== shape || v.shape.join() !== shape) return undefined;
  const n = sizeOf(p.shape);
  const [pOut, mOut, vOut] = [output(n), output(n), output(n)];
  const a = attrs as Record<string, number>;
  if (n > 0) {
    native().lib.adam(f32(backend, p), f32(backend, g), f32(backend, m), f32(backend, v), pOut, mOut, vOut, n, a.learningRate, a.beta1, a.beta2, a.oneMinusBeta1, a.oneMinusBeta2, a.c1, a.c2, a.epsilon, a.decay);
  }
  return [pOut, mOut, vOut].map((values) => backend.makeTensorInfo([...p.shape], 'float32', values));
}

export function optimizerKernels(backendName: string): KernelConfig[] {
  const run = (args: KernelArgs) => {
    const out = adamUpdate(args);
    if (!out) throw new Error(`[INVALID_ARGUMENT] ${ADAM_UPDATE_KERNEL} expects float32 p, g, m, v of one shape.`);
    return out;
  };
  return [{ kernelName: ADAM_UPDATE_KERNEL, backendName, kernelFunc: run }];
}
