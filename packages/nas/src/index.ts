/**
 * @rs/nas: neural architecture search over @rs/core graphs, split as NNI does into space
 * (choice points that generate a graph), strategy (random, regularized evolution, REINFORCE;
 * DARTS as a gradient-based procedure), evaluator (table lookup, real training) and execution
 * (`search`, with parallel rounds and checkpoints; worker threads in `@rs/nas/node`).
 */
export { defineSpace, checkArchitecture, randomArchitecture, mutateArchitecture } from './space';
export type { SearchSpace, ChoicePoint, Architecture, DefineSpaceOptions } from './space';
export { nb201Space, cellNetwork, NB201_OPS, NB201_EDGES } from './nb201';
export type { CellNetworkOptions } from './nb201';
export { randomSearch, regularizedEvolution, reinforce, createStrategy } from './strategy';
export type { Strategy, Trial, EvolutionOptions, ReinforceOptions, StrategyName } from './strategy';
export { asha, hyperband } from './asha';
export type { AshaOptions } from './asha';
export { search, anytimeCurve, memoryCheckpoint, tableEvaluator } from './search';
export type { SearchOptions, SearchResult, Evaluator, EvaluationContext, EvaluationResult, Budget, CheckpointStore, SearchCheckpoint, AnytimePoint, TableRow } from './search';
export { trainingEvaluator, mnistMlpSpace } from './training';
export type { TrainingEvaluatorOptions } from './training';
export { mixed, zero, nasOps } from './ops';
export { register, registerNasOps } from './register';
export { nasMixedOnnx, nasZeroOnnx } from './onnx';
export type { MixedAttrs } from './ops';
export { dartsSupernet, darts, discretize, architectureWeights } from './darts';
export type { SupernetOptions, DartsOptions, DartsResult, Discretized } from './darts';
