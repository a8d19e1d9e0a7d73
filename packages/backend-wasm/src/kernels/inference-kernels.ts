// The stock wasm kernels the inference runtime registers (../runtime.ts): the forward kernels
// of the tfjs ops that the @rs op schemas, the early exit and MoE routing call (elementwise and
// reductions, shapes and gathers, matmuls, convolutions and pools, softmax, top-k...), each
// imported from its own module so that a bundle carries only these. Gradient kernels, image,
// 3-D, string and sparse kernels are left out: a model whose forward pass needs one fails with
// tfjs' "kernel not registered" error on this runtime (the full @rs/backend-wasm has them all).
import { _fusedMatMulConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/_FusedMatMul.js';
import { absConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Abs.js';
import { addConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Add.js';
import { addNConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/AddN.js';
import { allConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/All.js';
import { anyConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Any.js';
import { argMaxConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/ArgMax.js';
import { argMinConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/ArgMin.js';
import { avgPoolConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/AvgPool.js';
import { batchMatMulConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/BatchMatMul.js';
import { castConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Cast.js';
import { ceilConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Ceil.js';
import { clipByValueConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/ClipByValue.js';
import { concatConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Concat.js';
import { conv2DConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Conv2D.js';
import { cosConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Cos.js';
import { cumsumConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Cumsum.js';
import { depthwiseConv2dNativeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/DepthwiseConv2dNative.js';
import { eluConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Elu.js';
import { equalConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Equal.js';
import { erfConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Erf.js';
import { expConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Exp.js';
import { expandDimsConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/ExpandDims.js';
import { fillConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Fill.js';
import { floorConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Floor.js';
import { floorDivConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/FloorDiv.js';
import { fusedBatchNormConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/FusedBatchNorm.js';
import { fusedConv2DConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/FusedConv2D.js';
import { fusedDepthwiseConv2DConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/FusedDepthwiseConv2D.js';
import { gatherNdConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/GatherNd.js';
import { gatherV2Config } from '@tensorflow/tfjs-backend-wasm/dist/kernels/GatherV2.js';
import { greaterConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Greater.js';
import { greaterEqualConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/GreaterEqual.js';
import { identityConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Identity.js';
import { isFiniteConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/IsFinite.js';
import { isInfConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/IsInf.js';
import { isNaNConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/IsNan.js';
import { leakyReluConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/LeakyRelu.js';
import { lessConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Less.js';
import { lessEqualConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/LessEqual.js';
import { logConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Log.js';
import { log1pConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Log1p.js';
import { logicalAndConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/LogicalAnd.js';
import { logicalNotConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/LogicalNot.js';
import { logicalOrConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/LogicalOr.js';
import { maxConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Max.js';
import { maximumConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Maximum.js';
import { maxPoolConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/MaxPool.js';
import { meanConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Mean.js';
import { minConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Min.js';
import { minimumConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Minimum.js';
import { modConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Mod.js';
import { multiplyConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Multiply.js';
import { negConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Neg.js';
import { notEqualConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/NotEqual.js';
import { oneHotConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/OneHot.js';
import { onesLikeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/OnesLike.js';
import { packConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Pack.js';
import { padV2Config } from '@tensorflow/tfjs-backend-wasm/dist/kernels/PadV2.js';
import { powConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Pow.js';
import { preluConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Prelu.js';
import { prodConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Prod.js';
import { rangeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Range.js';
import { realDivConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/RealDiv.js';
import { reciprocalConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Reciprocal.js';
import { reluConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Relu.js';
import { relu6Config } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Relu6.js';
import { reshapeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Reshape.js';
import { reverseConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Reverse.js';
import { roundConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Round.js';
import { rsqrtConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Rsqrt.js';
import { scatterNdConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/ScatterNd.js';
import { selectConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Select.js';
import { sigmoidConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sigmoid.js';
import { signConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sign.js';
import { sinConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sin.js';
import { sliceConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Slice.js';
import { softmaxConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Softmax.js';
import { softplusConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Softplus.js';
import { splitVConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/SplitV.js';
import { sqrtConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sqrt.js';
import { squareConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Square.js';
import { squaredDifferenceConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/SquaredDifference.js';
import { stepConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Step.js';
import { stridedSliceConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/StridedSlice.js';
import { subConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sub.js';
import { sumConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sum.js';
import { tanhConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Tanh.js';
import { tileConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Tile.js';
import { topKConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/TopK.js';
import { transposeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Transpose.js';
import { unpackConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/Unpack.js';
import { zerosLikeConfig } from '@tensorflow/tfjs-backend-wasm/dist/kernels/ZerosLike.js';
import type { KernelConfig } from './types';

/** The kernel configs, for `registerKernel` under the backend name 'wasm'. */
export const INFERENCE_KERNELS: readonly KernelConfig[] = [
  _fusedMatMulConfig,
  absConfig,
  addConfig,
  addNConfig,
  allConfig,
  anyConfig,
  argMaxConfig,
  argMinConfig,
  avgPoolConfig,
  batchMatMulConfig,
  castConfig,
  ceilConfig,
  clipByValueConfig,
  concatConfig,
  conv2DConfig,
  cosConfig,
  cumsumConfig,
  depthwiseConv2dNativeConfig,
  eluConfig,
  equalConfig,
  erfConfig,
  expConfig,
  expandDimsConfig,
  fillConfig,
  floorConfig,
  floorDivConfig,
  fusedBatchNormConfig,
  fusedConv2DConfig,
  fusedDepthwiseConv2DConfig,
  gatherNdConfig,
  gatherV2Config,
  greaterConfig,
  greaterEqualConfig,
  identityConfig,
  isFiniteConfig,
  isInfConfig,
  isNaNConfig,
  leakyReluConfig,
  lessConfig,
  lessEqualConfig,
  logConfig,
  log1pConfig,
  logicalAndConfig,
  logicalNotConfig,
  logicalOrConfig,
  maxConfig,
  maximumConfig,
  maxPoolConfig,
  meanConfig,
  minConfig,
  minimumConfig,
  modConfig,
  multiplyConfig,
  negConfig,
  notEqualConfig,
  oneHotConfig,
  onesLikeConfig,
  packConfig,
  padV2Config,
  powConfig,
  preluConfig,
  prodConfig,
  rangeConfig,
  realDivConfig,
  reciprocalConfig,
  reluConfig,
  relu6Config,
  reshapeConfig,
  reverseConfig,
  roundConfig,
  rsqrtConfig,
  scatterNdConfig,
  selectConfig,
  sigmoidConfig,
  signConfig,
  sinConfig,
  sliceConfig,
  softmaxConfig,
  softplusConfig,
  splitVConfig,
  sqrtConfig,
  squareConfig,
  squaredDifferenceConfig,
  stepConfig,
  stridedSliceConfig,
  subConfig,
  sumConfig,
  tanhConfig,
  tileConfig,
  topKConfig,
  transposeConfig,
  unpackConfig,
  zerosLikeConfig,
] as unknown as readonly KernelConfig[];
