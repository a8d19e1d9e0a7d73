/**
 * @rs/core: the graph IR, op registry, unit groups, transactional structural edits, executor,
 * training and IO. Technique packages build on this; `@rs/core/extend` is the plugin tier.
 */
export { tf } from './tf';
export type { Tensor } from './tf';
export { RsError, isRsError, formatShape } from './errors';
export type { RsErrorCode } from './errors';
export type { GraphDef, NodeDef, GraphInput, Shape, DType, TensorInfo, ParamSpec, ParamRole, InitializerSpec } from './ir/types';
export { paramKey, splitParamKey } from './ir/types';
export { validateGraph } from './ir/validate';
export { ancestors } from './ir/ancestors';
export type { ValidatedGraph } from './ir/validate';
export { OpRegistry, createOpRegistry, defaultRegistry } from './ops/registry';
export type { ExtensionValue } from './ops/registry';
export type { OpSchema } from './ops/schema';
export { Model, disposeRun } from './model';
export type { ParamEntry, CreateModelOptions, ApplyOptions, RunOutput } from './model';
export type { UnitGroup, ParamMember, ActivationMember } from './units/analyze';
export type { Transaction, EditMeta, InsertUnitsOptions, InsertNodeOptions } from './edit/transaction';
export type { JournalEntry, EditChange, NodeRecord, StructureBefore } from './edit/journal';
export type { ModelCounts, NodeCount } from './count';
export type { Taps } from './exec/executor';
export { fit, evaluate } from './train/fit';
export type { Dataset, FitOptions, FitHistory } from './train/fit';
export { trainStep, computeGradients, disposeGradients } from './train/gradients';
export type { Gradients, GradientOptions, StepResult } from './train/gradients';
export { earlyStopping, progressBar } from './train/callbacks';
export type { Callback, StepInfo, EpochInfo, EpochLogs, TrainBeginInfo, TrainEndInfo, EarlyStopping, EarlyStoppingOptions } from './train/callbacks';
export { adam, sgd, cosineDecay, ADAM_UPDATE_KERNEL } from './train/optimizers';
export type { Optimizer, AdamOptions, SgdOptions, LearningRateSchedule } from './train/optimizers';
export { softmaxCrossEntropy, sigmoidCrossEntropy, mse } from './train/losses';
export type { LossFn, LossName } from './train/losses';
export { createRng, permutation } from './rng';
export type { SeededRng } from './rng';
export { lenet300100, lenet5, charTransformer } from './models/builders';
export type { CharTransformerOptions } from './models/builders';
export { saveToBuffer, loadFromBuffer, save, load, nonFiniteTensors } from './io/model-io';
export type { SaveOptions, LoadOptions } from './io/model-io';
export { registerBackend, useBackend, backends, backendHasKernel } from './backend';
export { GELU_KERNEL, GELU_GRAD_KERNEL } from './ops/gelu';
export { DENSE_KERNEL } from './ops/dense';
export { LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL } from './ops/layer-norm';
export { ATTENTION_KERNEL, ATTENTION_GRAD_KERNEL } from './ops/multi-head-attention';
export { SOFTMAX_CE_KERNEL, SOFTMAX_CE_GRAD_KERNEL } from './train/losses';
export type { BackendInfo } from './backend';
export { checkSingleInstance } from './instance';
