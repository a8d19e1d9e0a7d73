import { tf, type Tensor } from '../tf';
import type { DType, ParamSpec, TensorInfo } from '../ir/types';
import { defaultRegistry, type OpRegistry } from '../ops/registry';
import type { InferContext, OpSchema } from '../ops/schema';
import { forwardContext } from '../exec/executor';
import { createRng, type SeededRng } from '../rng';
import { RsError, formatShape } from '../errors';

/**
 * The backend conformance suite: every op of a registry, forward and gradients, on a tested
 * backend against a reference backend (tinygrad's habit: every op on every device against one
 * reference). Plain functions, no test runner, so any backend package (ours or a third party's)
 * runs it from its own tests.
 */

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

const int = (rng: SeededRng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);
const pick = <T>(rng: SeededRng, options: readonly T[]): T => options[rng.int(options.length)];
const f32 = (shape: number[]): ConformanceInput => ({ shape, dtype: 'float32' });
const bit = (index: number, k: number): boolean => ((index >> k) & 1) === 1;
/** `[N, d1, ..., d(rank-1)]` with small random dims. */
const randomShape = (rng: SeededRng, rank: number, lo = 1, hi = 5): number[] => [int(rng, 1, 3), ...Array.from({ length: rank - 1 }, () => int(rng, lo, hi))];

const unary: ConformanceGenerator = {
  // Ranks 2, 3 and 4.
  variants: 3,
  generate: (rng, index) => ({ attrs: {}, inputs: [f32(randomShape(rng, 2 + (index % 3), 1, 6))] }),
};

/** Spatial size along one axis that a window of `window` fits with `padding`. */
const spatial = (rng: SeededRng, window: number, padding: string): number => (padding === 'valid' ? int(rng, window, window + 4) : int(rng, Math.max(1, window - 2), window + 4));

const pool: ConformanceGenerator = {
  // padding (valid, same) x window/stride (2 with the default stride 2, 3 with stride 1, 3 with
  // stride 2), then a rectangular window with rectangular strides.
  variants: 7,
  generate(rng, index) {
    const v = index % 7;
    const padding = v === 6 ? pick(rng, ['valid', 'same']) : bit(v, 0) ? 'same' : 'valid';
    const config = v === 6 ? { poolSize: [2, 3], strides: [1, 2] } : [{ poolSize: 2 }, { poolSize: 3, strides: 1 }, { poolSize: 3, strides: 2 }][v >> 1];
    const [ph, pw] = typeof config.poolSize === 'number' ? [config.poolSize, config.poolSize] : config.poolSize;
    return { attrs: { ...config, padding }, inputs: [f32([int(rng, 1, 2), spatial(rng, ph, padding), spatial(rng, pw, padding), int(rng, 1, 3)])] };
  },
};

/** Case generators of the built-in ops. A new built-in op without one fails `conformanceCases`. */
const builtinGenerators: Record<string, ConformanceGenerator> = {
  dense: {
    // Rank 2 with and without bias, rank 3, rank 4.
    variants: 4,
    generate(rng, index) {
      const v = index % 4;
      const shape = v < 2 ? randomShape(rng, 2, 1, 12) : randomShape(rng, v + 1, 1, 6);
      return { attrs: { units: int(rng, 1, 9), ...(v === 1 ? { useBias: false } : {}) }, inputs: [f32(shape)] };
    },
  },
  conv2d: {
    // Full factorial of padding (valid, same) x strides (1, 2) x kernel (3, 5) x input channels
    // (1, several), then two with rectangular kernels and strides, then 'same' with a stride
    // larger than the kernel (stock wasm's Conv2D got this wrong; found by this suite).
    variants: 19,
    generate(rng, index) {
      const v = index % 19;
      if (v === 18) {
        return {
          attrs: { filters: int(rng, 1, 4), kernelSize: 2, strides: 3, padding: 'same', useBias: rng.next() < 0.75 },
          inputs: [f32([int(rng, 1, 2), 3 * int(rng, 1, 3), 3 * int(rng, 1, 3), int(rng, 1, 3)])],
        };
      }
      if (v >= 16) {
        const kernelSize = [int(rng, 1, 3), int(rng, 1, 5)];
        const padding = pick(rng, ['valid', 'same']);
        return {
          attrs: { filters: int(rng, 1, 4), kernelSize, strides: v === 16 ? [1, 2] : [2, 1], padding, useBias: rng.next() < 0.75 },
          inputs: [f32([int(rng, 1, 2), spatial(rng, kernelSize[0], padding), spatial(rng, kernelSize[1], padding), int(rng, 1, 4)])],
        };
      }
      const padding = bit(v, 0) ? 'same' : 'valid';
      const strides = bit(v, 1) ? 2 : 1;
      const kernelSize = bit(v, 2) ? 5 : 3;
      const channels = bit(v, 3) ? int(rng, 2, 4) : 1;
      return {
        attrs: { filters: int(rng, 1, 4), kernelSize, strides, padding, useBias: rng.next() < 0.75 },
        inputs: [f32([int(rng, 1, 2), spatial(rng, kernelSize, padding), spatial(rng, kernelSize, padding), channels])],
      };
    },
  },
  maxPool2d: pool,
  avgPool2d: pool,
  flatten: { variants: 3, generate: (rng, index) => ({ attrs: {}, inputs: [f32(randomShape(rng, 3 + (index % 3), 1, 4))] }) },
  reshape: {
    // [N, a, b] to [a*b], [b, a], [a, -1]; [N, a, b, c] to [-1, c].
    variants: 4,
    generate(rng, index) {
      const [a, b, c] = [int(rng, 2, 4), int(rng, 2, 4), int(rng, 1, 4)];
      const n = int(rng, 1, 3);
      const v = index % 4;
      if (v === 3) return { attrs: { shape: [-1, c] }, inputs: [f32([n, a, b, c])] };
      return { attrs: { shape: [[a * b], [b, a], [a, -1]][v] }, inputs: [f32([n, a, b])] };
    },
  },
  relu: unary,
  gelu: unary,
  tanh: unary,
  sigmoid: unary,
  softmax: {
    // The last axis through tf.softmax (default and explicit), other axes through the composed form.
    variants: 4,
    generate(rng, index) {
      const v = index % 4;
      const rank = [2, 3, 3, 4][v];
      const axis = [undefined, -1, 1, 2][v];
      return { attrs: axis === undefined ? {} : { axis }, inputs: [f32(randomShape(rng, rank, 2, 6))] };
    },
  },
  add: {
    // 2 inputs (tf.add), 3 and 4 inputs (tf.addN).
    variants: 3,
    generate(rng, index) {
      const shape = randomShape(rng, int(rng, 2, 3), 1, 7);
      return { attrs: {}, inputs: Array.from({ length: 2 + (index % 3) }, () => f32(shape)) };
    },
  },
  concat: {
    // Feature axis with 2 and 3 inputs, a middle axis of rank 3 and of rank 4.
    variants: 4,
    generate(rng, index) {
      const v = index % 4;
      const [rank, axis, count] = [[3, -1, 2], [2, -1, 3], [3, 1, 2], [4, 2, 3]][v];
      const base = randomShape(rng, rank, 1, 4);
      const resolved = axis < 0 ? rank + axis : axis;
      const inputs = Array.from({ length: count }, () => f32(base.map((d, i) => (i === resolved ? int(rng, 1, 4) : d))));
      return { attrs: { axis }, inputs };
    },
  },
  slice: {
    // Rank 2, rank 3 with -1 (to the end) and with explicit sizes, rank 4 keeping whole axes.
    variants: 4,
    generate(rng, index) {
      const v = index % 4;
      const dims = Array.from({ length: v === 0 ? 1 : v === 3 ? 3 : 2 }, () => int(rng, 2, 6));
      const begin = dims.map((d) => int(rng, 0, d - 1));
      const size = dims.map((d, i) => {
        if (v === 3 && i !== 1) return -1;
        if (v === 1 && i === dims.length - 1) return -1;
        return int(rng, 1, d - begin[i]);
      });
      if (v === 3) begin[0] = begin[2] = 0;
      return { attrs: { begin, size }, inputs: [f32([int(rng, 1, 3), ...dims])] };
    },
  },
  layerNorm: {
    variants: 3,
    generate(rng, index) {
      const v = index % 3;
      return { attrs: v === 1 ? { epsilon: 1e-3 } : {}, inputs: [f32([...randomShape(rng, v + 1, 1, 4), int(rng, 2, 9)])] };
    },
  },
  batchNorm: {
    // Training (batch statistics, moving statistics updated) and inference (moving statistics),
    // each on [N, C] and [N, H, W, C].
    variants: 4,
    generate(rng, index) {
      const training = bit(index % 4, 0);
      const shape = bit(index % 4, 1) ? [2, int(rng, 1, 3), int(rng, 1, 3), int(rng, 1, 5)] : [int(rng, 3, 6), int(rng, 1, 6)];
      const attrs = { ...(rng.next() < 0.5 ? { epsilon: 1e-2 } : {}), ...(rng.next() < 0.5 ? { momentum: 0.9 } : {}) };
      return { attrs, inputs: [f32(shape)], training };
    },
  },
  embedding: {
    // Ids of rank 1, 2 and 3; small vocabularies repeat ids, so gradients accumulate.
    variants: 3,
    generate(rng, index) {
      const vocabSize = int(rng, 2, 12);
      const shape = [int(rng, 1, 3), ...Array.from({ length: index % 3 }, () => int(rng, 1, 5))];
      return { attrs: { vocabSize, dim: int(rng, 1, 8) }, inputs: [{ shape, dtype: 'int32', maxValue: vocabSize - 1 }] };
    },
  },
  positionEmbedding: {
    // T = maxLength, T < maxLength, T = 1.
    variants: 3,
    generate(rng, index) {
      const v = index % 3;
      const t = v === 2 ? 1 : int(rng, 2, 6);
      return { attrs: { maxLength: v === 0 ? t : t + int(rng, 1, 3) }, inputs: [f32([int(rng, 1, 3), t, int(rng, 1, 6)])] };
    },
  },
  multiHeadAttention: {
    // causal x useBias.
    variants: 4,
    generate(rng, index) {
      const causal = bit(index % 4, 0);
      const useBias = !bit(index % 4, 1);
      return {
        attrs: { numHeads: int(rng, 1, 3), headDim: int(rng, 1, 4), causal, ...(useBias ? {} : { useBias: false }) },
        inputs: [f32([int(rng, 1, 2), int(rng, 2, 6), int(rng, 2, 8)])],
      };
    },
  },
  dropout: {
    // Inference (identity) and training with rates 0.1, 0.5 and 0 (a clone). Training mode is
    // compared too: tf.dropout draws its mask with tf.randomUniform, which runs in JavaScript
    // (seedrandom, no backend kernel) from the seed that the op takes from ctx.rng, and both
    // backends get the same ctx.rng seed; the keep decision floor(u + keepProb) is one IEEE
    // float32 addition, so every backend with exact float32 arithmetic keeps the same elements.
    variants: 4,
    generate(rng, index) {
      const v = index % 4;
      return { attrs: { rate: [0.5, 0.1, 0.5, 0][v] }, inputs: [f32(randomShape(rng, int(rng, 2, 3), 1, 9))], training: v > 0 };
    },
  },
};

/** FNV-1a of the op name, so each op draws its shapes from its own stream. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The conformance cases of every op of `registry` (default: the default registry, i.e. the 20
 * built-ins): at least `perOp` (default 3) per op, one per discrete variant (conv2d: valid/same x
 * strides 1/2 x kernel 3/5 x 1/several channels; batchNorm and dropout: training/inference; ...),
 * with seeded random shapes. Same options, same cases.
 *
 * An op without a case generator is an error (RsError `INVALID_ARGUMENT`, `details.op`): the
 * suite has no exclusions, so a new op must bring its generator.
 *
 * @example
 * import { conformanceCases, checkConformance } from '@rs/core/testing';
 * for (const c of conformanceCases()) it(c.name, () => {
 *   const r = checkConformance(c, { backend: 'wasm', reference: 'cpu' });
 *   expect(r.ok, r.report).toBe(true);
 * });
 */
export function conformanceCases(options: ConformanceCasesOptions = {}): ConformanceCase[] {
  const registry = options.registry ?? defaultRegistry;
  const generators = { ...builtinGenerators, ...options.generators };
  const perOp = options.perOp ?? 3;
  const seed = options.seed ?? 0;
  const missing = registry.names().filter((op) => !Object.prototype.hasOwnProperty.call(generators, op));
  if (missing.length > 0) {
    throw new RsError(
      'INVALID_ARGUMENT',
      `conformance: op(s) ${missing.map((op) => `'${op}'`).join(', ')} of the registry have no case generator. Add one to the built-in generators ` +
        `(packages/core/src/testing/conformance.ts) or pass it as conformanceCases({ generators: { ${missing[0]}: ... } }); the suite allows no exclusions.`,
      { op: missing[0], ops: missing },
    );
  }
  const cases: ConformanceCase[] = [];
  for (const op of registry.names()) {
    const generator = generators[op];
    const rng = createRng((hashName(op) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
    const count = Math.max(perOp, generator.variants ?? 1);
    for (let index = 0; index < count; index++) {
      const spec = generator.generate(rng, index);
      const training = spec.training ?? false;
      const shapes = spec.inputs.map((x) => `${formatShape(x.shape)}${x.dtype === 'float32' ? '' : ` ${x.dtype}`}`).join(' ');
      cases.push({
        name: `${op} #${index + 1} ${shapes} ${JSON.stringify(spec.attrs)}${training ? ' training' : ''}`,
        op,
        attrs: spec.attrs,
        inputs: spec.inputs.map((x) => ({ ...x, shape: [...x.shape] })),
        training,
        seed: rng.int(2 ** 30),
      });
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// Running and comparing.

type Values = Float32Array | Int32Array | Uint8Array;

/** The data of a case, drawn once in JavaScript and copied onto each backend. */
interface CaseData {
  inputs: { shape: number[]; dtype: DType; values: Values }[];
  params: { name: string; spec: ParamSpec; values: Float32Array }[];
  output: TensorInfo;
  /** Seeds R, the weights of the loss sum(output * R), drawn once the output size is known. */
  weightSeed: number;
}

interface Evaluation {
  tensors: Map<string, { shape: number[]; values: Values }>;
  error?: string;
  leaked: number;
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function prepare(schema: OpSchema<any>, c: ConformanceCase): CaseData {
  const fail = (code: 'SHAPE_MISMATCH' | 'INVALID_ATTRS') => (message: string): never => {
    throw new RsError('INVALID_ARGUMENT', `conformance case '${c.name}' is not valid for op '${c.op}' (${code}): ${message}`, { op: c.op, case: c.name });
  };
  const ctx: InferContext = { nodeId: 'conformance', fail: fail('SHAPE_MISMATCH'), failAttrs: fail('INVALID_ATTRS') };
  const infos: TensorInfo[] = c.inputs.map((x) => ({ shape: [...x.shape], dtype: x.dtype }));
  const output = schema.infer(c.attrs, infos, ctx);
  const rng = createRng(c.seed);
  const inputs = c.inputs.map((x) => {
    const n = sizeOf(x.shape);
    const values: Values =
      x.dtype === 'int32' ? Int32Array.from({ length: n }, () => rng.int((x.maxValue ?? 9) + 1)) : Float32Array.from({ length: n }, () => rng.normal());
    return { shape: [...x.shape], dtype: x.dtype, values };
  });
  // Not the ops' initializers: zero biases and unit gammas would let a wrong broadcast or a
  // swapped operand pass the forward comparison. Uniform in [-1, 1]; `state` params (batchNorm's
  // moving variance) in [0.5, 1.5], which is valid for both statistics.
  const specs = schema.params?.(c.attrs, infos) ?? {};
  const params = Object.keys(specs).map((name) => {
    const spec = specs[name];
    const state = spec.role === 'state';
    return { name, spec, values: Float32Array.from({ length: sizeOf(spec.shape) }, () => (state ? 0.5 + rng.next() : 2 * rng.next() - 1)) };
  });
  return { inputs, params, output, weightSeed: rng.int(2 ** 30) };
}

/**
 * Runs the case on the active backend: the output, the gradients of
 * L = sum(output * R) (+ the op's auxiliary losses) with respect to every float input and every
 * param, the new `state` values, losses and metrics, all copied out as arrays.
 */
function evaluate(schema: OpSchema<any>, c: ConformanceCase, data: CaseData): Evaluation {
  const tensors = new Map<string, { shape: number[]; values: Values }>();
  const record = (key: string, t: Tensor): void => {
    tensors.set(key, { shape: [...t.shape], values: (t.dataSync() as Values).slice() });
  };
  const before = tf.memory().numTensors;
  // New state values are kept by the context: released in `finally` whatever happens.
  const sink = { losses: new Map<string, Tensor>(), metrics: new Map<string, Tensor>(), state: new Map<string, Tensor>() };
  let error: string | undefined;
  try {
    tf.tidy(() => {
      const inputs = data.inputs.map((x) => tf.tensor(x.values, x.shape, x.dtype));
      const params = data.params.map((p) => tf.tensor(p.values, p.spec.shape, 'float32'));
      const named = Object.fromEntries(data.params.map((p, k) => [p.name, params[k]]));
      // The library's own context: what ops report lands in `sink`, keyed `conformance/<name>`.
      // The same generator on both backends: ops that draw seeds (dropout) draw the same ones.
      const ctx = forwardContext('conformance', c.training, createRng((c.seed ^ 0x2545f491) >>> 0), sink);
      const short = (key: string): string => key.slice('conformance/'.length);
      const loss = (): Tensor => {
        const y = schema.forward(inputs, named, c.attrs, ctx);
        record('output', y);
        for (const [key, value] of sink.losses) record(`loss ${short(key)}`, value);
        for (const [key, value] of sink.metrics) record(`metric ${short(key)}`, value);
        const same = y.shape.length === data.output.shape.length && y.shape.every((d, i) => d === data.output.shape[i]);
        if (!same || y.dtype !== data.output.dtype) {
          throw new Error(`output ${formatShape(y.shape)} ${y.dtype} differs from the op's inferred ${formatShape(data.output.shape)} ${data.output.dtype}`);
        }
        if (y.dtype !== 'float32') return y;
        const r = createRng(data.weightSeed);
        const weights = tf.tensor(Float32Array.from({ length: y.size }, () => r.normal()), y.shape, 'float32');
        let total = tf.sum(tf.mul(y, weights));
        for (const value of sink.losses.values()) total = tf.add(total, tf.sum(value));
        return total;
      };
      const floatInputs = inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
      const targets = [...floatInputs.map((i) => inputs[i]), ...params];
      if (data.output.dtype !== 'float32' || targets.length === 0) {
        loss();
      } else {
        // The engine call behind tf.grads, allowing targets that the loss does not reach
        // (batchNorm's moving statistics in training mode): tf.grads would throw for them.
        // Which targets have a gradient is compared between the backends too.
        const { grads } = tf.engine().gradients(loss, targets, undefined, true);
        grads.forEach((g, k) => {
          if (!g) return;
          record(k < floatInputs.length ? `d input ${floatInputs[k]}` : `d param ${data.params[k - floatInputs.length].name}`, g);
        });
      }
      for (const [key, value] of sink.state) record(`state ${short(key)}`, value);
    });
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    discardTape();
  } finally {
    tf.dispose([...sink.state.values()]);
  }
  return { tensors, error, leaked: tf.memory().numTensors - before };
}

/**
 * After a forward that threw inside the gradient tape, tfjs keeps the tensors it saved for the
 * backward pass (it frees them only when a backward pass completes); free them the way it does.
 */
function discardTape(): void {
  const state = (tf.engine() as unknown as { state: { gradientDepth: number; activeTape: { saved?: Tensor[] }[] | null } }).state;
  if (state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}

/** Throws RsError NO_BACKEND unless `name` is registered and initialised. */
function checkReady(name: string): void {
  if (!tf.findBackend(name)) {
    const registered = tf.engine().backendNames();
    const why = registered.includes(name)
      ? 'it is registered but still initialising; await its install() (or tf.setBackend) before checking'
      : `it is not registered (registered: ${registered.join(', ') || 'none'}); install it first`;
    throw new RsError('NO_BACKEND', `conformance: backend '${name}' is not ready: ${why}.`, { backend: name });
  }
}

/** Makes `name` the active backend, synchronously (see `checkReady`). */
function activate(name: string): void {
  if (tf.getBackend() === name) return;
  checkReady(name);
  // setBackend only awaits while a backend initialises; for an initialised one it switches at once.
  void tf.setBackend(name);
  if (tf.getBackend() !== name) throw new RsError('NO_BACKEND', `conformance: could not switch to backend '${name}'.`, { backend: name });
}

const unravel = (index: number, shape: readonly number[]): number[] => {
  const out = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    out[axis] = index % shape[axis];
    index = Math.floor(index / shape[axis]);
  }
  return out;
};

const show = (x: number): string => (Number.isFinite(x) && x !== 0 ? String(Number(x.toPrecision(6))) : String(x));

/**
 * Runs one case on `backend` and on `reference` (default 'cpu') and compares, elementwise with
 * |tested - reference| <= atol + rtol * |reference| (rtol 1e-4, atol 1e-5 by default): the
 * output; the gradients of sum(output * R), R a fixed random tensor, with respect to every float
 * input and every param; and, in training mode, the op's new `state` values, losses and metrics.
 * Inputs and params are drawn once in JavaScript from the case's seed and copied onto each
 * backend. Synchronous: both backends must be initialised (await their `install()` first), else
 * it throws RsError `NO_BACKEND`. Restores the active backend and leaves no tensor behind (a
 * leak on either backend fails the case). A backend that throws (a missing kernel) fails the
 * case with the error in the report.
 *
 * @example
 * const result = checkConformance(c, { backend: 'wasm', reference: 'cpu' });
 * expect(result.ok, result.report).toBe(true);
 */
export function checkConformance(c: ConformanceCase, options: CheckConformanceOptions): ConformanceResult {
  const registry = options.registry ?? defaultRegistry;
  const schema = registry.get(c.op);
  const rtol = options.rtol ?? 1e-4;
  const atol = options.atol ?? 1e-5;
  const tested = options.backend;
  const reference = options.reference ?? 'cpu';
  const data = prepare(schema, c);
  const previous = tf.getBackend();
  let got: Evaluation;
  let want: Evaluation;
  try {
    checkReady(tested);
    checkReady(reference);
    activate(tested);
    got = evaluate(schema, c, data);
    activate(reference);
    want = evaluate(schema, c, data);
  } finally {
    if (previous && tf.getBackend() !== previous && tf.findBackend(previous)) void tf.setBackend(previous);
  }

  const header = `${c.name}: ${tested} vs ${reference} (rtol ${rtol}, atol ${atol})`;
  const failures: string[] = [];
  if (want.error) failures.push(`the reference ${reference} threw: ${want.error}`);
  if (got.error) failures.push(`${tested} threw: ${got.error}`);
  if (want.leaked !== 0) failures.push(`forward and gradients leaked ${want.leaked} tensor(s) on ${reference}`);
  if (got.leaked !== 0) failures.push(`forward and gradients leaked ${got.leaked} tensor(s) on ${tested}`);

  const tensors: ConformanceTensorReport[] = [];
  let maxError = 0;
  let worst = '';
  if (!want.error && !got.error) {
    for (const key of got.tensors.keys()) if (!want.tensors.has(key)) failures.push(`${key} exists on ${tested} only`);
    for (const [key, b] of want.tensors) {
      const a = got.tensors.get(key);
      if (!a) {
        failures.push(`${key} ${formatShape(b.shape)} is missing on ${tested}`);
        continue;
      }
      if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
        failures.push(`${key} has shape ${formatShape(a.shape)} on ${tested}, ${formatShape(b.shape)} on ${reference}`);
        continue;
      }
      let tensorError = 0;
      let tensorAbs = 0;
      for (let i = 0; i < b.values.length; i++) {
        const x = a.values[i];
        const y = b.values[i];
        const diff = x === y || (Number.isNaN(x) && Number.isNaN(y)) ? 0 : Math.abs(x - y);
        const error = Number.isNaN(diff) ? Infinity : diff / (atol + rtol * Math.abs(y));
        if (diff > tensorAbs || Number.isNaN(diff)) tensorAbs = Number.isNaN(diff) ? Infinity : diff;
        if (error > tensorError) tensorError = error;
        if (error > maxError) {
          maxError = error;
          worst =
            `${key} ${formatShape(b.shape)} at [${unravel(i, b.shape).join(', ')}]: ${tested} ${show(x)} vs ${reference} ${show(y)} ` +
            `(|diff| ${show(diff)}, allowed ${show(atol + rtol * Math.abs(y))})`;
        }
      }
      tensors.push({ tensor: key, shape: [...b.shape], maxAbsError: tensorAbs, maxError: tensorError });
    }
  }
  const structural = failures.length > 0;
  if (maxError > 1) failures.push(`worst ${worst}: ${show(maxError)} times the tolerance`);
  const ok = failures.length === 0;
  const perTensor = tensors.map((t) => `${t.tensor} ${show(t.maxError)}`).join(', ');
  const report = ok
    ? `${header}: ok, worst normalised error ${show(maxError)} (${perTensor})`
    : `${header}: FAILED. ${failures.join('; ')}` + (perTensor ? `. Normalised error per tensor (passes at <= 1): ${perTensor}` : '');
  return { ok, maxError: structural ? Infinity : maxError, report, tensors };
}
