const MARKER = Symbol.for('@rs/core.error');

/** Stable error codes. Match on `error.code`, never on the message. */
export type RsErrorCode =
  | 'UNKNOWN_OP'
  | 'DUPLICATE_OP'
  | 'DUPLICATE_EXTENSION'
  | 'INVALID_ATTRS'
  | 'INVALID_GRAPH'
  | 'DUPLICATE_ID'
  | 'DANGLING_INPUT'
  | 'CYCLE'
  | 'SHAPE_MISMATCH'
  | 'ARITY'
  | 'UNKNOWN_NODE'
  | 'UNKNOWN_PARAM'
  | 'UNKNOWN_GROUP'
  | 'FROZEN_GROUP'
  | 'FUNCTION_NOT_PRESERVED'
  | 'REMOVE_ALL_UNITS'
  | 'UNIT_INDEX_OUT_OF_RANGE'
  | 'DUPLICATE_UNIT_INDEX'
  | 'INVALID_PERMUTATION'
  | 'INVALID_EDIT'
  | 'INVALID_ARGUMENT'
  | 'TRANSACTION_CLOSED'
  | 'EDIT_IN_PROGRESS'
  | 'NON_FINITE'
  | 'NO_BACKEND'
  | 'DUPLICATE_INSTANCE'
  | 'IO_CORRUPT'
  | 'IO_TRUNCATED'
  | 'IO_MISMATCH'
  | 'IO_UNSUPPORTED_VERSION'
  | 'IO_NOT_A_MODEL'
  | 'DATA_MISMATCH'
  | 'BUDGET_EXCEEDED'
  | 'INVALID_ARCHITECTURE'
  | 'EMPTY_SPACE'
  | 'INVALID_BUDGET'
  | 'UNKNOWN_STRATEGY'
  | 'UNKNOWN_TASK'
  | 'UNSUPPORTED_EXPORT'
  | 'UNSUPPORTED_RUNTIME'
  | 'UNSUPPORTED_IMPORT'
  | 'QUEUE_UNREACHABLE'
  | 'TRIAL_FAILED'
  | 'USAGE';

/**
 * The one error class of the `@rs` packages. It carries a stable `code` and structured `details`.
 *
 * @example
 * try { model.edit(tx => tx.removeUnits('fc1', [999])); }
 * catch (e) { if (isRsError(e, 'UNIT_INDEX_OUT_OF_RANGE')) console.log(e.details); }
 */
export class RsError extends Error {
  readonly code: RsErrorCode;
  readonly details: Record<string, unknown>;
  readonly [MARKER] = true;

  constructor(code: RsErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`[${code}] ${message}`);
    this.name = 'RsError';
    this.code = code;
    this.details = details;
  }
}

/**
 * True when `error` is an RsError (from any copy of @rs/core), optionally with the given code.
 *
 * @example
 * if (isRsError(e, 'IO_CORRUPT')) showCorruptFileMessage();
 */
export function isRsError(error: unknown, code?: RsErrorCode): error is RsError {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as Record<symbol, unknown>)[MARKER] !== true) return false;
  return code === undefined || (error as RsError).code === code;
}

/** Formats a shape for messages: `[null,28,28,1]` -> `[?, 28, 28, 1]`. */
export function formatShape(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}
