import { defaultRegistry } from '../ops/registry';
import { createRng, type SeededRng } from '../rng';
import { RsError, formatShape } from '../errors';
import type { ConformanceCase, ConformanceCasesOptions, ConformanceGenerator, ConformanceInput } from './conformance-types';

// The case generators of the backend conformance suite: seeded random shapes and every
// discrete variant of each built-in op (see conformance.ts).

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
