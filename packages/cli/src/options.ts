import { usage } from './errors';

/** Parses a number option; a usage error (exit 2) names the flag when it is not one. */
export function number(flag: string, text: string | undefined, check?: { min?: number; max?: number; integer?: boolean; below?: number }): number;
export function number(flag: string, text: string | undefined, check: { min?: number; max?: number; integer?: boolean; below?: number }, optional: true): number | undefined;
export function number(flag: string, text: string | undefined, check: { min?: number; max?: number; integer?: boolean; below?: number } = {}, optional = false): number | undefined {
  if (text === undefined) {
    if (optional) return undefined;
    throw usage(`${flag} is required.`, { flag });
  }
  const value = Number(text);
  const kind = check.integer ? 'an integer' : 'a number';
  const bounds = [
    check.min !== undefined ? `>= ${check.min}` : '',
    check.max !== undefined ? `<= ${check.max}` : '',
    check.below !== undefined ? `< ${check.below}` : '',
  ].filter(Boolean);
  const wanted = `${kind}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  if (
    text.trim() === '' ||
    !Number.isFinite(value) ||
    (check.integer && !Number.isInteger(value)) ||
    (check.min !== undefined && value < check.min) ||
    (check.max !== undefined && value > check.max) ||
    (check.below !== undefined && value >= check.below)
  ) {
    throw usage(`${flag} must be ${wanted}, got '${text}'.`, { flag, value: text });
  }
  return value;
}

/** One of `allowed`, or a usage error listing them. */
export function choice<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) throw usage(`${flag} must be one of ${allowed.join(', ')}; got '${text}'.`, { flag, value: text });
  return text as T;
}

/** `fc1,fc2` -> `['fc1', 'fc2']`. */
export function list(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
