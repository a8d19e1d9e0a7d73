import type { JournalEntry, OpRegistry, Tensor } from '@rs/core';
import type { ExpertLoadSection } from '@rs/core/extend';

/**
 * An early-exit policy, read by the section that measures exit rates (the one @rs/dynamic
 * provides knows rules `'entropy'` and `'confidence'` and checks the thresholds).
 */
export interface ReportExitPolicy {
  rule: string;
  /** One threshold per early exit (all outputs but the last, in execution order), or one for all. */
  thresholds: number | number[];
}

/** Options of {@link collectReport}. */
export interface ReportOptions {
  /** Page title; default `Model report`. */
  title?: string;
  /**
   * Held-out inputs (and optional labels), used to measure expert load (models with `moe` nodes)
   * and exit rates (models with early exits). Nothing is measured without them.
   */
  data?: { x: Tensor; y?: Int32Array | number[] };
  /** Exit rule and thresholds for the `exits` section; default: the policy stored in the model (its provider reads it). */
  exitPolicy?: ReportExitPolicy;
  /**
   * Where the report finds its technique sections (extension point `'report'`: `expertLoad`
   * from @rs/moe, `exits` from @rs/dynamic, and any other provided section). Default: the model's registry.
   */
  registry?: OpRegistry;
  /**
   * A search result or checkpoint JSON of `@rs/nas` (anything with a `trials` array of
   * `{ validation, cost, test?, encoded? }`), or an array of them (one anytime curve each).
   */
  search?: unknown;
  /** Rows per forward pass while measuring; default 256. */
  batchSize?: number;
}

/** One node of a graph snapshot; `width` is the size of the output's last (feature) axis. */
export interface SnapshotNode {
  id: string;
  /** Op name, or `input` for a graph input. */
  op: string;
  inputs: string[];
  /** Units (last-axis size) of the node's output; null where the journal does not tell. */
  width: number | null;
  /** Set where the reconstruction had to guess (edges or attributes the journal does not record). */
  approximate?: boolean;
}

/** The graph structure after `step` journal entries (step 0: before the first entry). */
export interface GraphSnapshot {
  step: number;
  nodes: SnapshotNode[];
  outputs: string[];
  /** True for the current graph (read from the model), false for reconstructed ones. */
  exact: boolean;
}

/** A journal entry as shown in the report (the core `JournalEntry`, minus `details`). */
export type ReportJournalEntry = Omit<JournalEntry, 'details'>;

/** Element sparsity of one weight parameter, from its mask. */
export interface SparsityRow {
  /** Parameter key, `node/name`. */
  param: string;
  node: string;
  op: string;
  size: number;
  /** Elements whose mask is 0 (0 when the parameter has no mask). */
  zeros: number;
  /** zeros / size. */
  sparsity: number;
  masked: boolean;
}

/** Measured routing of one `moe` node over `data` (declared by core, shared with `@rs/moe`). */
export type { ExpertLoadLayer, ExpertLoadSection } from '@rs/core/extend';

/** Measured early-exit behaviour over `data`. */
export interface ExitRates {
  /** The exit rule (e.g. `'entropy'` or `'confidence'`). */
  rule: string;
  /** Thresholds of the early exits, in execution order. */
  thresholds: number[];
  /** Where the policy came from. */
  policySource: 'options' | 'model';
  rows: number;
  exits: {
    /** Output node id. */
    id: string;
    /** Position in execution order (0 = earliest). */
    index: number;
    /** Rows that left at this exit, and their fraction. */
    count: number;
    fraction: number;
    /** Accuracy of the rows that left here (only with labels). */
    accuracy?: number;
  }[];
  /** Accuracy of early-exit inference overall, and of the final exit alone (only with labels). */
  accuracy?: number;
  finalAccuracy?: number;
}

/** Size of one unit group over the journal steps, from grow entries. */
export interface GrowthSeries {
  group: string;
  /** Size after `step` journal entries (step k + 1 is after entry k + 1 of the journal, seq k + 1). */
  points: { step: number; size: number }[];
}

/** One search run's trials and best-so-far curve. */
export interface SearchCurve {
  name: string;
  strategy?: string;
  seed?: number;
  trials: { evaluation: number; seconds: number; validation: number; test?: number; encoded?: string }[];
  /** Best (by validation) after each trial: the `anytimeCurve` of `@rs/nas`. */
  anytime: { evaluations: number; seconds: number; bestValidation: number; bestTest?: number }[];
  best: { evaluation: number; validation: number; test?: number; encoded?: string };
  /**
   * Where and when each trial ran, for a search on a job queue (the `records` of `@rs/nas-queue`'s
   * `queueSearch`): seconds from the first start; attempt > 1: the trial was retried after its
   * worker died; fidelity: the trial's budget (ASHA rung); failed: its evaluation threw.
   */
  timeline?: QueueTimelineRow[];
}

/** One trial of a queue search's timeline. */
export interface QueueTimelineRow {
  trial: number;
  worker: string;
  start: number;
  end: number;
  attempt: number;
  fidelity?: number;
  failed?: boolean;
}

/**
 * Everything the report page shows, as plain JSON (print it, save it, render it later).
 * Each section holds data or, when empty, a `reason` saying why; no number is ever made up.
 */
export interface ReportData {
  version: 1;
  title: string;
  generated: string;
  model: {
    inputs: { id: string; shape: (number | null)[] }[];
    outputs: string[];
    nodes: number;
    params: number;
    nonzeroParams: number;
    flops: number;
  };
  journal: ReportJournalEntry[];
  graphs: {
    /** Snapshots for steps 0..journal.length; the last is the current graph. */
    snapshots: GraphSnapshot[];
    /** What the reconstruction could not recover. */
    notes: string[];
  };
  sparsity: { rows: SparsityRow[]; totalSize: number; totalZeros: number; reason?: string };
  expertLoad: ExpertLoadSection;
  exits: { rates?: ExitRates; reason?: string };
  growth: { series: GrowthSeries[]; insertedNodes: { seq: number; node: string; summary: string }[]; reason?: string };
  search: { curves: SearchCurve[]; reason?: string };
  /** Sections provided through the registry that the page does not lay out, by section key (JSON). */
  sections?: Record<string, unknown>;
}
