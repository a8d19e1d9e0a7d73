/**
 * @rs/core/testing: helpers for the tests of technique and backend packages (no test runner
 * dependency: plain functions).
 */
import { tf, type Tensor } from './tf';

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
