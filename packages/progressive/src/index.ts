/**
 * @rs/progressive: progressive neural networks (Rusu et al. 2016) on @rs/core models: a column
 * per task, earlier columns frozen, non-linear lateral adapters (MLP and conv columns), a head
 * per task, compression by removing weak laterals, and continual-learning metrics (ACC, BWT,
 * FWT) with the usual baselines.
 */
export { ProgressiveNet, addColumn, removeWeakLaterals } from './progressive';
export type { TaskId, ColumnInfo, CreateProgressiveOptions, AddColumnOptions, ColumnParams, LateralInfo, RemoveLateralsOptions } from './progressive';
export { analyzeColumn, lateralIds, sumId } from './column';
export type { ColumnLayer, ColumnShape, AdapterOptions, LateralIds } from './column';
export { learnedScale, learnedScaleOnnx, register, progressiveRegistry } from './learned-scale';
export type { LearnedScaleAttrs } from './learned-scale';
export type { TrainOptions, TrainHistory, TaskPlan } from './train';
export { continualMetrics, runSequence } from './continual';
export type { ContinualMetrics, ContinualTask, Strategy, SequenceOptions, SequenceResult } from './continual';
