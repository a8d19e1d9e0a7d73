/**
 * @rs/core/extend: the plugin tier, for op, technique and backend authors. Weaker stability
 * guarantees than the main entry (like `jax.extend`).
 */
export type { OpSchema, InferContext, ForwardContext, Rng } from './ops/schema';
export { concrete, sizeOf } from './ops/schema';
export type { UnitBuilder, Layout, LayoutMember, ParamAxis, UnitMapping } from './units/builder';
export { analyzeUnits } from './units/analyze';
export type { UnitAnalysis } from './units/analyze';
export { unitPositions, blockStarts } from './edit/positions';
export { elementwiseInfer, elementwiseFlops } from './ops/elementwise';
export { builtinOps } from './ops/builtins';
export { compile, execute, runPlan } from './exec/executor';
export type { Plan, PlanStep, RunOptions, RunResult } from './exec/executor';
export type { KernelRegistration, KernelTensorInfo } from './exec/kernel-types';
export { gradientsOf, objectiveStep } from './train/gradients';
export type { ForwardPass, PassRunOptions, GradientsOfOptions, ObjectiveStepOptions } from './train/gradients';
export { initialize } from './rng';
export { resolveLoss } from './train/losses';
export { valueAndGrads } from './train/tape';
export type {
  ExtensionPoints,
  OnnxRule,
  OnnxCheckInfo,
  OnnxEmitContext,
  OnnxOpOptions,
  OnnxAttrValue,
  OnnxTensorValue,
  OnnxDType,
  ReportSection,
  ExpertLoadLayer,
  ExpertLoadSection,
  ReportSectionContext,
  ReportSectionData,
  TelemetryReader,
  RunMetrics,
  ImportanceScore,
  ScoreContext,
  ScoreBatch,
} from './ops/extensions';
export type { ExtensionValue } from './ops/registry';
export { applyMask } from './ir/mask';
export { checkpoint } from './train/checkpoint';
export type { Checkpoint } from './train/checkpoint';
