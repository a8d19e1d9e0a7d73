const MARKER = Symbol.for('@rs/datasets.error');

/** Stable error codes of @rs/datasets. Match on `error.code`, never on the message. */
export type DatasetErrorCode =
  /** An option or argument is out of range or of the wrong kind. */
  | 'INVALID_ARGUMENT'
  /** `encode()` met a character that is not in the vocabulary. */
  | 'UNKNOWN_CHARACTER'
  /** A data file of a dependency could not be found or read. */
  | 'DATA_NOT_FOUND'
  /** A data file was read but does not have the expected content. */
  | 'DATA_CORRUPT';

/**
 * The error class of @rs/datasets. It carries a stable `code` and structured `details`.
 * Deliberately local: this package depends on nothing else of the workspace.
 *
 * @example
 * try { twoSpirals({ pointsPerSpiral: -1 }); }
 * catch (e) { if (isDatasetError(e, 'INVALID_ARGUMENT')) console.log(e.message); }
 */
export class DatasetError extends Error {
  readonly code: DatasetErrorCode;
  readonly details: Record<string, unknown>;
  readonly [MARKER] = true;

  constructor(code: DatasetErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`[${code}] ${message}`);
    this.name = 'DatasetError';
    this.code = code;
    this.details = details;
  }
}

/**
 * True when `error` is a DatasetError (from any copy of this package), optionally with `code`.
 * Identifies by a `Symbol.for` marker, so it works where `instanceof` fails across copies.
 *
 * @example
 * if (isDatasetError(e, 'UNKNOWN_CHARACTER')) console.log(e.details.character);
 */
export function isDatasetError(error: unknown, code?: DatasetErrorCode): error is DatasetError {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as Record<symbol, unknown>)[MARKER] !== true) return false;
  return code === undefined || (error as DatasetError).code === code;
}

/** Throws INVALID_ARGUMENT unless `value` is an integer in [min, max]. */
export function checkInteger(
  name: string,
  value: unknown,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER
        ? min === Number.MIN_SAFE_INTEGER
          ? 'an integer'
          : `an integer >= ${min}`
        : `an integer in [${min}, ${max}]`;
    throw new DatasetError('INVALID_ARGUMENT', `${name} must be ${range}, got ${String(value)}.`, {
      name,
      value,
    });
  }
  return value;
}

/** Throws INVALID_ARGUMENT unless `value` is a 32-bit seed (any safe integer is accepted, used mod 2^32). */
export function checkSeed(name: string, value: unknown): number {
  return checkInteger(name, value) >>> 0;
}
