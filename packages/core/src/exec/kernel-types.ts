/**
 * The shape of a TensorFlow.js kernel registration, typed structurally for backend authors
 * (tfjs-core's own `KernelConfig` names its backend class and attribute maps, which a backend
 * package would otherwise have to cast around). A backend narrows `Args` to what its kernels
 * receive: the inputs, its own backend object and the attributes.
 */

/** A tensor as a kernel sees it: tfjs-core's `TensorInfo`. */
export type KernelTensorInfo = { dataId: object; shape: number[]; dtype: string };

/** One kernel for one backend, as `tf.registerKernel` takes it. */
export interface KernelRegistration<Args = never> {
  kernelName: string;
  backendName: string;
  kernelFunc: (args: Args) => KernelTensorInfo | KernelTensorInfo[];
  setupFunc?: (backend: unknown) => void;
  disposeFunc?: (backend: unknown) => void;
}
