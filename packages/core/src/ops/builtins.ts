import type { OpSchema } from './schema';
import { dense } from './dense';
import { relu } from './relu';
import { add } from './add';
import { conv2d } from './conv2d';
import { maxPool2d } from './max-pool2d';
import { avgPool2d } from './avg-pool2d';
import { flatten } from './flatten';
import { reshape } from './reshape';
import { gelu } from './gelu';
import { tanh } from './tanh';
import { sigmoid } from './sigmoid';
import { softmax } from './softmax';
import { concat } from './concat';
import { slice } from './slice';
import { layerNorm } from './layer-norm';
import { batchNorm } from './batch-norm';
import { embedding } from './embedding';
import { multiHeadAttention } from './multi-head-attention';
import { dropout } from './dropout';
import { positionEmbedding } from './position-embedding';

/** Every built-in op, in the order they are registered. */
export const builtinOps: OpSchema<any>[] = [
  dense,
  relu,
  add,
  conv2d,
  maxPool2d,
  avgPool2d,
  flatten,
  reshape,
  gelu,
  tanh,
  sigmoid,
  softmax,
  concat,
  slice,
  layerNorm,
  batchNorm,
  embedding,
  multiHeadAttention,
  dropout,
  positionEmbedding,
];
