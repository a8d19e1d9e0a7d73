/**
 * @rs/core/testing: helpers for the tests of technique and backend packages (no test runner
 * dependency: plain functions).
 */
import { tf, type Tensor } from './tf';
import type { RsErrorCode } from './errors';
import type { Model } from './model';
import { saveToBuffer } from './io/model-io';

export { randomGraph } from './testing/random-graphs';
export type { RandomGraphOptions } from './testing/random-graphs';
export { conformanceCases, checkConformance } from './testing/conformance';
export type {
  ConformanceCase,
  ConformanceResult,
  ConformanceInput,
  ConformanceCaseSpec,
  ConformanceGenerator,
  ConformanceCasesOptions,
  CheckConformanceOptions,
  ConformanceTensorReport,
} from './testing/conformance';
export { choicesFrom, drawMutationPlan, applyMutation, applyMutationPlan, fuzzSeedFiles, tryLoad, MAX_APPLY_ELEMENTS, INTERESTING_VALUES, EXPECTED_LOAD_CODE } from './testing/fuzz-mutations';
export type { ChoiceSource, FileMutation, MutationPlan, LoadOutcome } from './testing/fuzz-mutations';
export { maskSmallest, foreignTensors, maskedZeros, maskProblems, regrownProblems } from './testing/masks';
export type { MaskProblemsOptions } from './testing/masks';

/**
 * Largest absolute elementwise difference between two tensors of the same shape.
 *
 * @example
 * expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
 */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/**
 * Runs `body` and returns how many tensors it left alive (0 means no leak).
 *
 * @example
 * expect(await leakedTensors(() => fit(model, data, options))).toBe(0);
 */
export async function leakedTensors(body: () => unknown): Promise<number> {
  const before = tf.memory().numTensors;
  await body();
  return tf.memory().numTensors - before;
}

/**
 * Runs `body`, which must throw (or reject), and reports the error and how many tensors the
 * failed call left alive. Every public function that makes tensors must leave 0 behind when it
 * throws; tests across the packages check it with this helper.
 *
 * @example
 * const { error, leaked } = await leakOnThrow(() => fit(model, badData, options));
 * expect(leaked).toBe(0);
 * expect(error).toMatchObject({ code: 'DATA_MISMATCH' });
 */
export async function leakOnThrow(body: () => unknown): Promise<{ error: unknown; leaked: number }> {
  const before = tf.memory().numTensors;
  try {
    await body();
  } catch (error) {
    return { error, leaked: tf.memory().numTensors - before };
  }
  throw new Error('leakOnThrow: the call did not throw');
}

/**
 * What a failing call must throw: an error code (`RsError.code`), a pattern the code must match,
 * the very `Error` a user callback threw (it must come out unchanged: same object), or a predicate.
 */
export type ExpectedFailure = RsErrorCode | RegExp | Error | ((error: unknown) => boolean);

/** One named call that must fail, and how. */
export type FailureCase = readonly [name: string, call: () => unknown, expected: ExpectedFailure];

export interface FailureProblemsOptions {
  /**
   * A model every failed call must leave as it was: its saved bytes (optimizer state included)
   * and its journal length.
   */
  model?: Model;
  /** Further state that must not change (compared as JSON before and after each case). */
  state?: () => unknown;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} (${error.message})` : `an untyped ${error.name}: ${error.message}`;
  }
  return `a non-Error value ${String(error)}`;
}

function failureMismatch(error: unknown, expected: ExpectedFailure): string | undefined {
  if (expected instanceof Error) return error === expected ? undefined : `threw ${describeError(error)}, expected the callback's own error "${expected.message}" unchanged`;
  if (typeof expected === 'function') return expected(error) ? undefined : `threw ${describeError(error)}, which fails the expected check`;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const ok = typeof code === 'string' && (typeof expected === 'string' ? code === expected : expected.test(code));
  return ok ? undefined : `threw ${describeError(error)}, expected ${String(expected)}`;
}

const modelBytes = (model: Model): Uint8Array => new Uint8Array(saveToBuffer(model, { includeOptimizerState: true }));
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Runs each case with {@link leakOnThrow} and returns what went wrong, one line per problem (an
 * empty list when every call threw as expected, left no tensor alive, and left `options.model`
 * and `options.state` as they were): the contract of every public function that makes tensors.
 *
 * @example
 * expect(await failureProblems([
 *   ['count 0', () => widen(model, 'fc1', 0), 'INVALID_ARGUMENT'],
 *   ['throwing loss', () => growGradMax(model, 'fc2', 2, { batch, loss }), userError],
 * ], { model })).toEqual([]);
 */
export async function failureProblems(cases: readonly FailureCase[], options: FailureProblemsOptions = {}): Promise<string[]> {
  const { model, state } = options;
  const bytes = model ? modelBytes(model) : undefined;
  const journal = model?.journal.length;
  const stateBefore = state ? JSON.stringify(state()) : undefined;
  const problems: string[] = [];
  for (const [name, call, expected] of cases) {
    let outcome: { error: unknown; leaked: number };
    try {
      outcome = await leakOnThrow(call);
    } catch {
      problems.push(`${name}: did not throw`);
      continue;
    }
    const mismatch = failureMismatch(outcome.error, expected);
    if (mismatch) problems.push(`${name}: ${mismatch}`);
    if (outcome.leaked !== 0) problems.push(`${name}: leaked ${outcome.leaked} tensor(s)`);
    if (model && bytes && !sameBytes(modelBytes(model), bytes)) problems.push(`${name}: model bytes changed`);
    if (model && model.journal.length !== journal) problems.push(`${name}: journal grew from ${journal} to ${model.journal.length} entries`);
    if (state && JSON.stringify(state()) !== stateBefore) problems.push(`${name}: state changed from ${stateBefore} to ${JSON.stringify(state())}`);
  }
  return problems;
}

/**
 * Small shared inputs for failure tests: `x` (8 rows of 6 features), `y` (8 class ids of 3
 * classes), and two bad variants of them, `xWide` (7 features) and `yShort` (4 ids for 8 rows).
 * The caller disposes them.
 *
 * @example
 * ({ x, y, xWide, yShort } = failureData());
 */
export function failureData(): { x: Tensor; y: Tensor; xWide: Tensor; yShort: Tensor } {
  return {
    x: tf.randomNormal([8, 6], 0, 1, 'float32', 2),
    y: tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'),
    xWide: tf.randomNormal([8, 7], 0, 1, 'float32', 3),
    yShort: tf.tensor1d([0, 1, 2, 0], 'int32'),
  };
}
