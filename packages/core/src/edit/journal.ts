/** One primitive inside an edit, as recorded in the journal. */
export interface EditChange {
  kind:
    | 'removeUnits'
    | 'insertUnits'
    | 'permuteUnits'
    | 'insertNode'
    | 'removeNode'
    | 'replaceNode'
    | 'setTrainable'
    | 'setMask'
    | 'setParam'
    | 'setSlot'
    | 'setOutputs'
    | 'setMeta';
  /** Group id, node id or parameter key the change applies to. */
  target: string;
  /** Human-readable summary, e.g. `removed 2 of 300 units [3, 7]`. */
  summary: string;
  /** Sizes before/after where the change resized something. */
  size?: { before: number; after: number };
}

/** A committed edit: what changed, who asked and why, and its cost in parameters and FLOPs. */
export interface JournalEntry {
  seq: number;
  time: string;
  technique: string;
  reason: string;
  changes: EditChange[];
  params: { before: number; after: number };
  /** Non-zero parameters (after masks), before and after. */
  nonzeroParams: { before: number; after: number };
  flops: { before: number; after: number };
  details?: Record<string, unknown>;
}
