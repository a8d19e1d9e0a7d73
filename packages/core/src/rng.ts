import { tf, type Tensor } from './tf';
import type { InitializerSpec } from './ir/types';
import type { Rng } from './ops/schema';

/**
 * A small seeded generator (sfc32). Same seed, same sequence, on every platform.
 *
 * @example
 * const rng = createRng(42); rng.next(); // 0 <= x < 1
 */
export interface SeededRng extends Rng {
  /** Standard normal sample (Box-Muller). */
  normal(): number;
  /** Integer in [0, n). */
  int(n: number): number;
  /** The generator's state, to resume it later. */
  state(): number[];
  /** Puts the generator back to a state returned by `state()`. */
  restore(state: readonly number[]): void;
}

export function createRng(seed: number, state?: number[]): SeededRng {
  let [a, b, c, d] = state ?? [0x9e3779b9, 0x243f6a88, 0xb7e15162, seed >>> 0];
  const next = (): number => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  if (!state) for (let i = 0; i < 15; i++) next();
  return {
    next,
    seed: () => Math.floor(next() * 2147483647),
    int: (n: number) => Math.floor(next() * n),
    normal: () => {
      const u = Math.max(next(), 1e-12);
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    state: () => [a >>> 0, b >>> 0, c >>> 0, d >>> 0],
    restore: (saved) => {
      [a, b, c, d] = saved;
    },
  };
}

/** Fisher-Yates shuffle of 0..n-1 with `rng`. */
export function permutation(n: number, rng: SeededRng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Materialises an initializer for `shape`, drawing values from `rng` (deterministic). */
export function initialize(spec: InitializerSpec, shape: number[], rng: SeededRng): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  switch (spec.kind) {
    case 'zeros':
      return tf.zeros(shape);
    case 'ones':
      return tf.ones(shape);
    case 'constant':
      return tf.fill(shape, spec.value);
    default: {
      const values = new Float32Array(n);
      const fill = (draw: () => number): void => {
        for (let i = 0; i < n; i++) values[i] = draw();
      };
      if (spec.kind === 'glorotUniform') {
        const limit = Math.sqrt(6 / (spec.fanIn + spec.fanOut));
        fill(() => (rng.next() * 2 - 1) * limit);
      } else if (spec.kind === 'heUniform') {
        const limit = Math.sqrt(6 / spec.fanIn);
        fill(() => (rng.next() * 2 - 1) * limit);
      } else if (spec.kind === 'heNormal') {
        const std = Math.sqrt(2 / spec.fanIn);
        fill(() => rng.normal() * std);
      } else if (spec.kind === 'normal') {
        fill(() => (spec.mean ?? 0) + rng.normal() * spec.std);
      } else if (spec.kind === 'uniform') {
        fill(() => spec.min + rng.next() * (spec.max - spec.min));
      }
      return tf.tensor(values, shape, 'float32');
    }
  }
}
