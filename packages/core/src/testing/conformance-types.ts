import type { SeededRng } from '../rng';
import type { DType } from '../ir/types';
import type { OpRegistry } from '../ops/registry';

// The types of the backend conformance suite (see conformance.ts).

/** One input of a case. */
export interface ConformanceInput {
  shape: number[];
  dtype: DType;
  /** int32 inputs only: values are drawn uniformly from `[0, maxValue]` (default 9). */
  maxValue?: number;
}

/** What a case generator returns: attrs and concrete input shapes (and the mode). */
export interface ConformanceCaseSpec {
  attrs: Record<string, unknown>;
  inputs: ConformanceInput[];
  /** Run `forward` in training mode (batchNorm batch statistics, dropout masks). Default false. */
  training?: boolean;
}

/** One op, one set of attrs, concrete input shapes, a mode and the seed of its data. Plain JSON. */
export interface ConformanceCase {
  /** Unique and readable: op, index, input shapes, attrs, mode. */
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  inputs: ConformanceInput[];
  training: boolean;
  /** Seeds the inputs, parameters, the loss weights R and `ctx.rng`. */
  seed: number;
}

/**
 * Makes the cases of one op. `generate(rng, index)` is called for `index = 0 .. count - 1`, where
 * `count = max(perOp, variants)`; built-ins pick their discrete variant (padding, strides,
 * training mode, ...) from `index % variants` and draw the shapes from `rng`.
 *
 * @example
 * const square: ConformanceGenerator = { generate: (rng) => ({ attrs: {}, inputs: [{ shape: [2, 1 + rng.int(5)], dtype: 'float32' }] }) };
 * conformanceCases({ registry, generators: { square } });
 */
export interface ConformanceGenerator {
  /** How many cases it takes to cover every discrete variant once. Default 1. */
  variants?: number;
  generate(rng: SeededRng, index: number): ConformanceCaseSpec;
}

export interface ConformanceCasesOptions {
  /** Seeds the shapes (and each case's data seed). Default 0. */
  seed?: number;
  /** The ops to cover: every op in it needs a generator. Default: the default registry. */
  registry?: OpRegistry;
  /** Cases per op, at least (an op with more variants gets one case per variant). Default 3. */
  perOp?: number;
  /** Generators for ops that are not built in (or replacements for built-in ones). */
  generators?: Record<string, ConformanceGenerator>;
}

export interface CheckConformanceOptions {
  /** The backend under test; it must be registered and initialised (await its install()). */
  backend: string;
  /** The backend whose answers are right. Default 'cpu'. */
  reference?: string;
  /** Default 1e-4. */
  rtol?: number;
  /** Default 1e-5. */
  atol?: number;
  /** Where the case's op is looked up. Default: the default registry. */
  registry?: OpRegistry;
}

/** The comparison of one tensor (`output`, `d input 0`, `d param kernel`, `state movingMean`, ...). */
export interface ConformanceTensorReport {
  tensor: string;
  shape: number[];
  /** Largest |tested - reference| over its elements. */
  maxAbsError: number;
  /** Largest |tested - reference| / (atol + rtol |reference|); the tensor passes at <= 1. */
  maxError: number;
}

export interface ConformanceResult {
  ok: boolean;
  /**
   * Largest normalised error |tested - reference| / (atol + rtol |reference|) over every compared
   * element of every tensor; `ok` is `maxError <= 1`. Infinity for a structural failure: a
   * backend threw, leaked tensors, or a tensor is missing or of another shape.
   */
  maxError: number;
  /** One paragraph naming the case (op, shapes, attrs), the worst tensor and element, and every tensor's error. */
  report: string;
  tensors: ConformanceTensorReport[];
}

// ---------------------------------------------------------------------------------------------
// Case generators of the built-in ops.
