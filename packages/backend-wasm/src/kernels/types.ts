// The slice of tfjs-core's kernel types that the wasm patches use, structurally typed.

import type { KernelRegistration, KernelTensorInfo } from '@rs/core/extend';

export type TensorInfo = KernelTensorInfo;
export type KernelArgs = { inputs: Record<string, TensorInfo>; backend: KernelBackendLike; attrs?: Record<string, unknown> };
export type KernelFunc = (args: KernelArgs) => TensorInfo | TensorInfo[];

export interface KernelBackendLike {
  readSync(dataId: object): ArrayLike<number> | Uint8Array[];
  write(values: ArrayLike<number>, shape: number[], dtype: string): object;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Members of tfjs-backend-wasm's BackendWasm that read and allocate on the wasm heap. */
export interface HeapBackend extends KernelBackendLike {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export type KernelConfig = KernelRegistration<KernelArgs>;

/** A conv's strides attribute as [height, width]. */
export function strides2(strides: number | [number, number] | undefined): [number, number] {
  return typeof strides === 'number' ? [strides, strides] : (strides ?? [1, 1]);
}
