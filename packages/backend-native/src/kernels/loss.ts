/**
 * Core's fused softmax cross-entropy (SOFTMAX_CE_KERNEL and its gradient, see @rs/core's
 * losses): the loss and the softmax in one pass over the logits, the gradient in one more,
 * instead of the twenty-odd tfjs kernels of the composed loss and its autodiff.
 */
import { SOFTMAX_CE_KERNEL, SOFTMAX_CE_GRAD_KERNEL } from '@rs/core';
import { allFloat32, f32, native, output, sizeOf, type KernelArgs, type KernelConfig, type StorageBackend, type TensorInfo } from './common';

/** The int32 class ids, checked against the [n, c] operand. */
function classIds(backend: StorageBackend, labels: TensorInfo | undefined, rows: number, kernel: string): Int32Array {
  const ids = labels && labels.dtype === 'int32' ? backend.data.get(labels.dataId).values : undefined;
  if (!labels || !(ids instanceof Int32Array) || labels.shape.length !== 1 || labels.shape[0] !== rows) {
    throw new Error(`[INVALID_ARGUMENT] ${kernel} expects int32 labels of shape [${rows}], got ${labels ? `${labels.dtype} [${labels.shape.join(', ')}]` : 'none'}.`);
  }
  return ids;
}

function softmaxCrossEntropy({ inputs, backend }: KernelArgs): TensorInfo[] {
  const { logits, labels } = inputs;
  if (!logits || !allFloat32(backend, logits) || logits.shape.length !== 2) throw new Error(`[INVALID_ARGUMENT] ${SOFTMAX_CE_KERNEL} expects float32 logits [n, c].`);
  const [rows, classes] = logits.shape;
  const ids = classIds(backend, labels, rows, SOFTMAX_CE_KERNEL);
  const probs = output(rows * classes);
  const loss = native().lib.softmaxCe(f32(backend, logits), ids, probs, rows, classes) as number;
  return [backend.makeTensorInfo([], 'float32', Float32Array.of(loss)), backend.makeTensorInfo([rows, classes], 'float32', probs)];
}

function softmaxCrossEntropyGrad({ inputs, backend }: KernelArgs): TensorInfo {
  const { dy, probs, labels } = inputs;
  if (!dy || !probs || !allFloat32(backend, dy, probs) || sizeOf(dy.shape) !== 1 || probs.shape.length !== 2) {
    throw new Error(`[INVALID_ARGUMENT] ${SOFTMAX_CE_GRAD_KERNEL} expects a float32 scalar dy and float32 probs [n, c].`);
  }
  const [rows, classes] = probs.shape;
  const ids = classIds(backend, labels, rows, SOFTMAX_CE_GRAD_KERNEL);
  const out = output(rows * classes);
  if (out.length > 0) native().lib.softmaxCeGrad(f32(backend, dy)[0], f32(backend, probs), ids, out, rows, classes);
  return backend.makeTensorInfo([rows, classes], 'float32', out);
}

export function lossKernels(backendName: string): KernelConfig[] {
  return [
    { kernelName: SOFTMAX_CE_KERNEL, backendName, kernelFunc: softmaxCrossEntropy },
    { kernelName: SOFTMAX_CE_GRAD_KERNEL, backendName, kernelFunc: softmaxCrossEntropyGrad },
  ];
}
