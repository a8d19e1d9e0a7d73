// Shared by the import tests (excluded from the build): fixtures, NCHW <-> NHWC, and the
// comparison of an imported model with ONNX Runtime running the original file.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tf, type Model, type Tensor } from '@rs/core';
import { runOrt } from './test-harness';

export const FIXTURES = fileURLToPath(new URL('../fixtures/import/', import.meta.url));

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${FIXTURES}${name}`));
}

/** The acceptance bound: |ours - ORT| <= 1e-4 * max(1, max |ORT|) (relative to the output's scale, float32). */
export const RELATIVE = 1e-4;

export interface ImportComparison {
  maxDiff: number;
  maxAbs: number;
  /** maxDiff / max(1, maxAbs) */
  relative: number;
}

/** Compares `ours` with an ONNX output (same layout; rank-4 NHWC ours vs NCHW theirs is transposed). */
export function compareArrays(ours: Tensor, theirs: { data: Float32Array; dims: number[] }): ImportComparison {
  const aligned = tf.tidy(() => (ours.rank === 4 && theirs.dims[3] !== ours.shape[3] ? tf.transpose(ours, [0, 3, 1, 2]) : ours.clone()));
  try {
    if (aligned.shape.join() !== theirs.dims.join()) throw new Error(`shapes differ: ours [${aligned.shape}] vs ONNX [${theirs.dims}]`);
    const data = aligned.dataSync();
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new Error('non-finite output');
      maxDiff = Math.max(maxDiff, Math.abs(data[i] - theirs.data[i]));
      maxAbs = Math.max(maxAbs, Math.abs(theirs.data[i]));
    }
    return { maxDiff, maxAbs, relative: maxDiff / Math.max(1, maxAbs) };
  } finally {
    aligned.dispose();
  }
}

/**
 * Runs `bytes` in ONNX Runtime on `input` (NHWC images are fed as NCHW, as the ONNX file wants
 * them when `nchw` is set) and `model` on `input`; compares the first outputs.
 */
export async function compareImport(model: Model, bytes: Uint8Array, input: Tensor, nchw: boolean): Promise<ImportComparison> {
  const feed = nchw ? tf.transpose(input, [0, 3, 1, 2]) : input;
  try {
    const name = model.graph.inputs[0].id;
    const ort = await runOrt(bytes, { [name]: feed });
    const theirs = Object.values(ort)[0];
    const ours = model.apply(input);
    try {
      return compareArrays(ours, theirs);
    } finally {
      ours.dispose();
    }
  } finally {
    if (feed !== input) feed.dispose();
  }
}
