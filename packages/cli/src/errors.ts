import { RsError, isRsError } from '@rs/core';

const MARKER = Symbol.for('@rs/cli.error');

/** Codes of errors the CLI raises itself (everything else keeps its package's code). */
export type CliErrorCode = 'FILE_NOT_FOUND' | 'NOT_A_FILE' | 'NOT_IN_REPOSITORY' | 'MISSING_PACKAGE';

/**
 * An error of the command line itself (a missing file...). Identified by `code`, like RsError.
 *
 * @example
 * throw new CliError('FILE_NOT_FOUND', `No such file: model.rsm.`);
 */
export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly details: Record<string, unknown>;
  readonly [MARKER] = true;

  constructor(code: CliErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(`[${code}] ${message}`);
    this.name = 'CliError';
    this.code = code;
    this.details = details;
  }
}

/** A usage error (bad flag value, missing option): exit code 2. */
export function usage(message: string, details: Record<string, unknown> = {}): RsError {
  return new RsError('USAGE', message, details);
}

/** The code and message (without its `[CODE] ` prefix) of anything thrown. */
export function describeError(error: unknown): { code: string; message: string } {
  if (isRsError(error)) return { code: error.code, message: stripCode(error.message, error.code) };
  if (typeof error === 'object' && error !== null) {
    const e = error as { code?: unknown; message?: unknown };
    const message = typeof e.message === 'string' ? e.message : String(error);
    // Errors of other @rs packages (DatasetError, CliError) and Node system errors (ENOENT) carry a string code.
    if (typeof e.code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(e.code)) return { code: e.code, message: stripCode(message, e.code) };
    // Some packages throw plain Errors whose message starts with `[CODE] `.
    const tagged = /^\[([A-Z][A-Z0-9_]*)\] (.*)$/s.exec(message);
    if (tagged) return { code: tagged[1], message: tagged[2] };
    return { code: 'INTERNAL', message };
  }
  return { code: 'INTERNAL', message: String(error) };
}

function stripCode(message: string, code: string): string {
  const prefix = `[${code}] `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

/** Exit status for an error: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(code: string): number {
  return code === 'USAGE' ? 2 : 1;
}
