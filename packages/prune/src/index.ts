/**
 * @rs/prune: decide (scores), apply (masks / removal through @rs/core edits), materialize.
 */
export { l1, l2, taylor, taylorGroup, gate, snip, random, ScoreRegistry, createScoreRegistry, defaultScores } from './scores';
export type { ImportanceScore, ScoreContext, ScoreBatch } from './scores';
export { groupUnitScores, gateImportance } from './group-scores';
export { pruneWeights, pruneUnits, removeUnits, materialize, prunableParams } from './prune';
export type { PruneWeightsOptions, PruneUnitsOptions, MaterializeOptions, MaterializeResult, Scope } from './prune';
export { polynomialSparsity, gradualPruning, iterativeSchedule, pruneIteratively } from './schedule';
export type { PolynomialOptions, IterativeOptions, IterativeRound } from './schedule';
export { findLotteryTicket } from './lottery';
export type { LotteryOptions, LotteryRow } from './lottery';
export { pruneReport, formatReport } from './report';
export type { PruneReport, LayerReport } from './report';
