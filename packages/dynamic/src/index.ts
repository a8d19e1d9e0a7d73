/**
 * @rs/dynamic: dynamic inference for @rs/core models. Early exits (heads attached by a journaled
 * edit, joint training, entropy/confidence rules, calibration, per-sample exit in batches),
 * adaptive depth (LayerDrop, skip gates), slimmable widths and conditionally computed blocks.
 */
export { addExit, setExitPolicy, exitPolicy, EXIT_POLICY_KEY, exitOrder, exitScores, checkThreshold, multiExitStep, earlyExitPredict, calibrateThreshold } from './early-exit';
export type { AddExitOptions, ExitRule, EarlyExitResult, EarlyExitOptions, ThresholdPoint, Calibration, CalibrateOptions } from './early-exit';
export { Slimmable } from './slimmable';
export type { SlimmableOptions } from './slimmable';
export { blocksBetween, transformerBlocks, skipAlias, keepAtDepth, layerDropStep, layerDropObjective, lossWithAlias } from './layer-drop';
export type { ResidualBlock, LayerDropOptions } from './layer-drop';
export { addSkipGate, gatedStep, gatedPredict } from './conditional';
export type { GatedBlock, GatedResult } from './conditional';
export { register, exitRatesSection, exitPasses } from './report';
export type { ExitRatesSection } from './report';
