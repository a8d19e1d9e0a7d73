/**
 * Pruning that applies decisions to a model: unstructured masks (prune-weights.ts), structured
 * unit removal (prune-units.ts), and materialize (materialize.ts); shared checks in
 * prune-common.ts.
 */
export { pruneWeights, prunableParams } from './prune-weights';
export type { PruneWeightsOptions } from './prune-weights';
export { pruneUnits, removeUnits } from './prune-units';
export type { PruneUnitsOptions } from './prune-units';
export { materialize } from './materialize';
export type { MaterializeOptions, MaterializeResult } from './materialize';
export type { Scope } from './prune-common';
