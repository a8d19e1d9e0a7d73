import { tf, type Tensor } from '../tf';
import type { TensorInfo } from '../ir/types';
import { defaultRegistry, type OpRegistry } from '../ops/registry';
import type { ForwardContext, OpSchema } from '../ops/schema';
import { createRng, type SeededRng } from '../rng';
import { formatShape } from '../errors';

/** One op, one set of attrs and concrete input shapes. */
export interface ConformanceCase {
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  inputs: { shape: number[]; dtype: 'float32' | 'int32'; maxValue?: number }[];
  training: boolean;
  seed: number;
}

export interface ConformanceResult {
  ok: boolean;
  /** Largest normalised error |a - b| / (atol + rtol |b|) over every compared element (<= 1 passes). */
  maxError: number;
  report: string;
}

type Generator = (rng: SeededRng) => Omit<ConformanceCase, 'name' | 'op' | 'seed'>;

const pick = <T>(rng: SeededRng, options: T[]): T => options[rng.int(options.length)];
const int = (rng: SeededRng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);
const f32 = (shape: number[]) => ({ shape, dtype: 'float32' as const });

/** Case generators per built-in op: each call draws another random shape. */
const generators: Record<string, Generator> = {
  dense: (r) => ({ attrs: { units: int(r, 1, 9), useBias: r.next() < 0.8 }, inputs: [f32(r.next() < 0.5 ? [int(r, 1, 4), int(r, 1, 12)] : [2, int(r, 1, 5), int(r, 1, 8)])], training: false }),
  conv2d: (r) => {
    const k = pick(r, [1, 3, 5]);
    const size = int(r, k, k + 6);
    return {
      attrs: { filters: int(r, 1, 5), kernelSize: k, strides: pick(r, [1, 2]), padding: pick(r, ['same', 'valid']), useBias: r.next() < 0.8 },
      inputs: [f32([int(r, 1, 2), size, size + int(r, 0, 2), pick(r, [1, 2, 3])])],
      training: false,
    };
  },
  maxPool2d: (r) => ({ attrs: { poolSize: pick(r, [2, 3]), padding: pick(r, ['same', 'valid']) }, inputs: [f32([int(r, 1, 2), int(r, 4, 9), int(r, 4, 9), int(r, 1, 3)])], training: false }),
  avgPool2d: (r) => ({ attrs: { poolSize: pick(r, [2, 3]), strides: pick(r, [1, 2]), padding: pick(r, ['same', 'valid']) }, inputs: [f32([int(r, 1, 2), int(r, 4, 9), int(r, 4, 9), int(r, 1, 3)])], training: false }),
  flatten: (r) => ({ attrs: {}, inputs: [f32([int(r, 1, 3), int(r, 1, 4), int(r, 1, 4), int(r, 1, 3)])], training: false }),
  reshape: (r) => {
    const [a, b] = [int(r, 1, 4), int(r, 1, 4)];
    return { attrs: { shape: pick(r, [[a * b], [b, a], [a, -1]]) }, inputs: [f32([int(r, 1, 3), a, b])], training: false };
  },
  relu: (r) => ({ attrs: {}, inputs: [f32([int(r, 1, 4), int(r, 1, 9)])], training: false }),
  gelu: (r) => ({ attrs: {}, inputs: [f32([int(r, 1, 4), int(r, 1, 9)])], training: false }),
  tanh: (r) => ({ attrs: {}, inputs: [f32([int(r, 1, 4), int(r, 1, 9)])], training: false }),
  sigmoid: (r) => ({ attrs: {}, inputs: [f32([int(r, 1, 4), int(r, 1, 9)])], training: false }),
  softmax: (r) => ({ attrs: { axis: pick(r, [-1, 1]) }, inputs: [f32([int(r, 1, 3), int(r, 2, 5), int(r, 2, 6)])], training: false }),
  add: (r) => {
    const shape = [int(r, 1, 3), int(r, 1, 7)];
    return { attrs: {}, inputs: Array.from({ length: int(r, 2, 3) }, () => f32(shape)), training: false };
  },
  concat: (r) => {
    const [n, h] = [int(r, 1, 3), int(r, 1, 4)];
    const axis = pick(r, [-1, 1]);
    return {
      attrs: { axis },
      inputs: Array.from({ length: int(r, 2, 3) }, () => f32(axis === 1 ? [n, int(r, 1, 4), h] : [n, h, int(r, 1, 4)])),
      training: false,
    };
  },
  slice: (r) => {
    const [a, b] = [int(r, 2, 6), int(r, 2, 6)];
    return { attrs: { begin: [int(r, 0, a - 1), int(r, 0, b - 1)], size: [1, pick(r, [-1, 1])] }, inputs: [f32([int(r, 1, 3), a, b])], training: false };
  },
  layerNorm: (r) => ({ attrs: {}, inputs: [f32([int(r, 1, 3), int(r, 1, 4), int(r, 2, 9)])], training: false }),
  batchNorm: (r) => ({ attrs: {}, inputs: [f32([int(r, 2, 4), int(r, 1, 4), int(r, 1, 3), int(r, 1, 5)])], training: r.next() < 0.5 }),
  embedding: (r) => {
    const vocabSize = int(r, 2, 12);
    return { attrs: { vocabSize, dim: int(r, 1, 8) }, inputs: [{ shape: [int(r, 1, 3), int(r, 1, 6)], dtype: 'int32', maxValue: vocabSize - 1 }], training: false };
  },
  positionEmbedding: (r) => {
    const t = int(r, 1, 6);
    return { attrs: { maxLength: t + int(r, 0, 3) }, inputs: [f32([int(r, 1, 3), t, int(r, 1, 6)])], training: false };
  },
  multiHeadAttention: (r) => ({
    attrs: { numHeads: int(r, 1, 3), headDim: int(r, 1, 4), causal: r.next() < 0.5, useBias: r.next() < 0.8 },
    inputs: [f32([int(r, 1, 2), int(r, 1, 6), int(r, 2, 8)])],
    training: false,
  }),
  // Training-mode dropout draws its mask from a seeded JS generator (tf.randomUniform with a
  // seed), so both backends see the same mask.
  dropout: (r) => ({ attrs: { rate: pick(r, [0.1, 0.5]) }, inputs: [f32([int(r, 1, 4), int(r, 1, 9)])], training: r.next() < 0.5 }),
};

/**
 * Cases for every op of the registry (default: the built-ins), `perOp` random shapes each.
 * An op without a generator is an error: the suite has no exclusions.
 *
 * @example
 * for (const c of conformanceCases()) it(c.name, () => expect(checkConformance(c, { backend: 'wasm' }).ok).toBe(true));
 */
export function conformanceCases(options: { seed?: number; perOp?: number; registry?: OpRegistry; generators?: Record<string, Generator> } = {}): ConformanceCase[] {
  const registry = options.registry ?? defaultRegistry;
  const table = { ...generators, ...options.generators };
  const cases: ConformanceCase[] = [];
  const perOp = options.perOp ?? 4;
  for (const op of registry.names()) {
    const generate = table[op];
    if (!generate) throw new Error(`conformance: op '${op}' has no case generator; add one (the suite allows no exclusions).`);
    const rng = createRng((options.seed ?? 0) * 7919 + op.length * 31 + op.charCodeAt(0));
    for (let i = 0; i < perOp; i++) {
      const c = generate(rng);
      const seed = rng.int(1 << 30);
      const shapes = c.inputs.map((x) => formatShape(x.shape)).join(' ');
      cases.push({ ...c, op, seed, name: `${op} #${i + 1} ${shapes} ${JSON.stringify(c.attrs)}${c.training ? ' training' : ''}` });
    }
  }
  return cases;
}

/** Forward output and every gradient of sum(output * R), as plain arrays, on the active backend. */
function evaluateCase(schema: OpSchema<any>, c: ConformanceCase): Map<string, Float32Array | Int32Array> {
  const rng = createRng(c.seed);
  const infos: TensorInfo[] = c.inputs.map((x) => ({ shape: x.shape, dtype: x.dtype }));
  const specs = schema.params?.(c.attrs, infos) ?? {};
  const out = new Map<string, Float32Array | Int32Array>();
  const before = tf.memory().numTensors;
  const kept: Tensor[] = [];
  tf.tidy(() => {
    const inputs = c.inputs.map((x) => {
      const n = x.shape.reduce((a, b) => a * b, 1);
      if (x.dtype === 'int32') return tf.tensor(Int32Array.from({ length: n }, () => rng.int((x.maxValue ?? 9) + 1)), x.shape, 'int32');
      return tf.tensor(Float32Array.from({ length: n }, () => rng.normal()), x.shape, 'float32');
    });
    const names = Object.keys(specs);
    const params = names.map((name) => {
      const spec = specs[name];
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const values = Float32Array.from({ length: n }, () => (spec.role === 'state' ? 0.5 + rng.next() : rng.next() * 2 - 1));
      return tf.tensor(values, spec.shape, 'float32');
    });
    const ctx = (): ForwardContext => ({
      nodeId: 'conformance',
      training: c.training,
      rng: createRng(c.seed + 1),
      addLoss: () => undefined,
      addMetric: () => undefined,
      setState: (_name, value) => kept.push(value),
    });
    const forward = (xs: Tensor[], ps: Tensor[]) => schema.forward(xs, Object.fromEntries(names.map((name, i) => [name, ps[i]])), c.attrs, ctx());
    const y = forward(inputs, params);
    out.set('output', y.dataSync().slice() as Float32Array);
    const weights = tf.tensor(Float32Array.from({ length: y.size }, () => rng.normal()), y.shape, 'float32');
    const floatInputs = inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
    // State (batchNorm running statistics) is not trained: no gradient to compare.
    const trained = names.map((name, k) => (specs[name].role === 'state' ? -1 : k)).filter((k) => k >= 0);
    const targets = [...floatInputs.map((i) => inputs[i]), ...trained.map((k) => params[k])];
    const grads = tf.grads((...args: Tensor[]) => {
      const xs = inputs.map((x, i) => (floatInputs.includes(i) ? args[floatInputs.indexOf(i)] : x));
      const ps = params.map((p, k) => (trained.includes(k) ? args[floatInputs.length + trained.indexOf(k)] : p));
      return tf.sum(tf.mul(forward(xs, ps), weights));
    })(targets);
    floatInputs.forEach((i, k) => out.set(`d input ${i}`, grads[k].dataSync().slice() as Float32Array));
    trained.forEach((k, j) => out.set(`d param ${names[k]}`, grads[floatInputs.length + j].dataSync().slice() as Float32Array));
  });
  tf.dispose(kept);
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) throw new Error(`conformance: ${c.name} leaked ${leaked} tensor(s) on ${tf.getBackend()}`);
  return out;
}

/**
 * Runs a case on `backend` and on `reference` (default cpu) and compares the forward output and
 * the gradients with respect to every float input and every parameter:
 * |a - b| <= atol + rtol |b| (rtol 1e-4, atol 1e-5 by default). Synchronous: both backends
 * must be initialised (call their `install()` first). Restores the active backend.
 *
 * @example
 * const result = checkConformance(c, { backend: 'wasm' });
 * expect(result.ok, result.report).toBe(true);
 */
export function checkConformance(
  c: ConformanceCase,
  options: { backend: string; reference?: string; rtol?: number; atol?: number; registry?: OpRegistry },
): ConformanceResult {
  const registry = options.registry ?? defaultRegistry;
  const schema = registry.get(c.op);
  const rtol = options.rtol ?? 1e-4;
  const atol = options.atol ?? 1e-5;
  const previous = tf.getBackend();
  const on = (name: string) => {
    const engine = tf.engine() as unknown as { setBackend?: unknown; backendName: string };
    // setBackend is async only while a backend initialises; installed backends switch at once.
    void tf.setBackend(name);
    if (engine.backendName !== name) throw new Error(`conformance: backend '${name}' is not initialised; await its install() first.`);
    return evaluateCase(schema, c);
  };
  try {
    const tested = on(options.backend);
    const reference = on(options.reference ?? 'cpu');
    let maxError = 0;
    let worst = '';
    for (const [key, want] of reference) {
      const got = tested.get(key);
      if (!got || got.length !== want.length) return { ok: false, maxError: Infinity, report: `${c.name}: ${key} missing or of another size on ${options.backend}` };
      for (let i = 0; i < want.length; i++) {
        const error = Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i]));
        if (!(error <= maxError)) {
          maxError = Number.isNaN(error) ? Infinity : error;
          worst = `${key}[${i}]: ${options.backend} ${got[i]} vs ${options.reference ?? 'cpu'} ${want[i]}`;
        }
      }
    }
    return { ok: maxError <= 1, maxError, report: `${c.name}: worst ${worst || 'none'} (normalised error ${maxError.toFixed(3)}, passes at <= 1)` };
  } finally {
    void tf.setBackend(previous);
  }
}
