// Shared by the import tests (excluded from the build): fixtures, NCHW <-> NHWC, and the
// comparison of an imported model with ONNX Runtime running the original file.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tf, type Model, type Tensor } from '@rs/core';
import { runOrt } from './test-harness';
import { onnx } from './proto';

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

/**
 * The checks of ONNX's checker that matter for an exported graph, in JS: an opset import, every
 * node input defined before it is read (graph input, initializer or an earlier node's output),
 * every value produced once, initializer data sized as its dims say, every graph output produced.
 * Shape consistency is checked by loading the bytes into ONNX Runtime, which infers every shape
 * and refuses conflicts (done by the callers, which run it). Returns the problems found.
 */
export function onnxGraphProblems(bytes: Uint8Array): string[] {
  const model = onnx.ModelProto.decode(bytes);
  const problems: string[] = [];
  if (!(model.opsetImport ?? []).some((o) => (o.domain ?? '') === '')) problems.push('no opset import for the default domain');
  const graph = model.graph;
  if (!graph) return ['no graph'];
  const defined = new Set<string>();
  const width: Record<number, number> = { 1: 4, 6: 4, 7: 8, 9: 1, 11: 8 };
  for (const input of graph.input ?? []) defined.add(input.name ?? '');
  for (const init of graph.initializer ?? []) {
    const size = (init.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    const bytesOf = init.rawData?.length ?? 0;
    const typed = (init.floatData?.length ?? 0) + (init.int64Data?.length ?? 0) + (init.int32Data?.length ?? 0) + (init.doubleData?.length ?? 0);
    if (bytesOf > 0 ? bytesOf !== size * (width[init.dataType ?? 0] ?? NaN) : typed !== size) problems.push(`initializer '${init.name}' holds data for another shape than [${init.dims}]`);
    if (defined.has(init.name ?? '')) problems.push(`'${init.name}' defined twice`);
    defined.add(init.name ?? '');
  }
  for (const node of graph.node ?? []) {
    for (const input of node.input ?? []) if (input && !defined.has(input)) problems.push(`node '${node.name}' (${node.opType}) reads '${input}' before it is defined`);
    for (const output of node.output ?? []) {
      if (defined.has(output)) problems.push(`'${output}' defined twice`);
      defined.add(output);
    }
  }
  for (const output of graph.output ?? []) if (!defined.has(output.name ?? '')) problems.push(`graph output '${output.name}' is never computed`);
  return problems;
}
