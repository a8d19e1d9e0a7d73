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
  /**
   * For the changes that edit the graph's structure (insertNode, removeNode, replaceNode,
   * setOutputs): what the change found, so that tools can undo it exactly (the report draws the
   * graph before every entry from it) without reading `summary`. Absent in journals saved
   * before this field existed.
   */
  before?: StructureBefore;
}

/** A node as a structural change found it. */
export interface NodeRecord {
  id: string;
  op: string;
  inputs: string[];
  /** Its output shape (`null`: the batch axis or another free size). */
  shape: (number | null)[];
  /** The node before it in the graph's node list (absent: it was the first node). */
  previous?: string;
}

/** The structure a change found (see `EditChange.before`). */
export interface StructureBefore {
  /** The node that was removed or replaced. */
  node?: NodeRecord;
  /** replaceNode: the id of the node that took its place (when it differs from the target). */
  replacement?: string;
  /** Every node whose inputs the change rewired, with its inputs before the change. */
  rewired?: { id: string; inputs: string[] }[];
  /** The graph outputs before the change, where it changed them. */
  outputs?: string[];
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
