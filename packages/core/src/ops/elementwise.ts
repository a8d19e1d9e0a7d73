import { formatShape } from '../errors';
import type { InferContext } from './schema';
import type { TensorInfo } from '../ir/types';
import { concrete, sizeOf } from './schema';

/** Shape rule of unary elementwise ops: output = input. */
export function elementwiseInfer(_attrs: unknown, inputs: TensorInfo[], ctx: InferContext): TensorInfo {
  const [x] = inputs;
  if (x.dtype !== 'float32') ctx.fail(`expects float32 input, got ${x.dtype} ${formatShape(x.shape)}`);
  return { shape: [...x.shape], dtype: x.dtype };
}

/** FLOPs of an elementwise op costing `perElement` operations per output element. */
export function elementwiseFlops(perElement: number) {
  return (_attrs: unknown, _inputs: TensorInfo[], output: TensorInfo): number => perElement * sizeOf(concrete(output.shape));
}
