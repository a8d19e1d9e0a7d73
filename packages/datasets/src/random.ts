// Seeded randomness for splits and batches. Written here (not imported) so the MNIST split and
// the batch streams are fixed by this file alone and never change with a dependency upgrade.
// Changing anything in this file changes the published MNIST split: don't.

/** mulberry32: a small 32-bit PRNG (Tommy Ettinger), uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Mixes a seed and a stream number (task id, step) into a new 32-bit seed, so stream `k` does
 * not depend on how many streams came before it. Finalizer of murmur3.
 */
export function deriveSeed(seed: number, stream: number): number {
  let h = (seed >>> 0) ^ Math.imul((stream >>> 0) + 1, 0x9e3779b9);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fisher-Yates shuffle in place, from the last element down. */
export function shuffleInPlace(array: Int32Array, random: () => number): Int32Array {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = array[i];
    array[i] = array[j];
    array[j] = tmp;
  }
  return array;
}

/** 0, 1, ..., n - 1. */
export function range(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
