import type { Tensor } from './tf';
import type { GraphDef, ParamRole } from './ir/types';
import type { OpRegistry } from './ops/registry';
import type { RunOptions, Taps } from './exec/executor';
import type { JournalEntry } from './edit/journal';

/** A parameter tensor with its training metadata. */
export interface ParamEntry {
  value: Tensor;
  trainable: boolean;
  role: ParamRole;
  /** Element mask (1 keep, 0 pruned), same shape as `value`. */
  mask?: Tensor;
}

/** Everything an edit may change; swapped as a whole on commit. */
export interface ModelState {
  graph: GraphDef;
  params: Map<string, ParamEntry>;
  /** Optimizer state (Adam moments...) by parameter key, then slot name. Follows edits. */
  slots: Map<string, Map<string, Tensor>>;
  journal: JournalEntry[];
  /**
   * Optimizer updates applied to each parameter since the optimizer state was last reset (Adam's
   * bias correction and learning-rate schedules read them), by parameter key, like the slots.
   * Per parameter, so that two optimizers on one model (DARTS: architecture and weights) or
   * updates that skip parameters (LayerDrop) count each parameter's own updates. Saved with the
   * optimizer state.
   */
  optimizerSteps: Map<string, number>;
}

export interface CreateModelOptions {
  registry?: OpRegistry;
  /** Seed for parameter initialisation and for dropout/noise in `apply`. Default 0. */
  seed?: number;
  /** Initial values for some parameters, by key (`fc1/kernel`); others are initialised. */
  params?: Record<string, Tensor>;
}

export interface ApplyOptions {
  training?: boolean;
  taps?: Taps;
  /** Nodes to compute instead of the graph's outputs (an early exit's head, a hidden layer). */
  targets?: string[];
  /** Skip nodes: `node -> other` reads `other`'s value instead (see `RunOptions.alias`). */
  alias?: ReadonlyMap<string, string>;
  /** Replace a node's computation (see `RunOptions.intercept`). */
  intercept?: RunOptions['intercept'];
}

/** Outputs plus everything a run produced. Dispose with `disposeRun`. */
export interface RunOutput {
  outputs: Tensor[];
  losses: Map<string, Tensor>;
  metrics: Map<string, Tensor>;
  activations: Map<string, Tensor>;
}

