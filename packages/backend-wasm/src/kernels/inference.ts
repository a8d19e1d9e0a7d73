/**
 * The kernel patches of the inference runtime (../runtime.ts): the same fast paths and
 * correctness fixes as the full backend's forward kernels (./index.ts), without the cpu backend:
 * the one stock kernel that is wrong on a forward pass is refused instead of bridged to cpu.
 */
import { patchTransposedMatMul } from './batch-matmul';
import { guardConv2D } from './conv2d-guard';
import { patchFusedBias } from './fused-bias';
import { patchGather } from './gather';
import { registerSegmentSum } from './segment-sum';

/** Registers the runtime's patches for `backendName`; returns the patched kernel names. */
export function registerInferencePatches(backendName: string): string[] {
  const patched = [...patchTransposedMatMul(backendName), ...patchFusedBias(backendName)];
  registerSegmentSum(backendName);
  guardConv2D(backendName);
  if (patchGather(backendName)) patched.push('GatherV2');
  return patched;
}
