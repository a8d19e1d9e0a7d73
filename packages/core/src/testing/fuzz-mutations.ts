import { tf, type Tensor } from '../tf';
import { isRsError } from '../errors';
import { Model } from '../model';
import { lenet300100, lenet5 } from '../models/builders';
import { randomGraph } from './random-graphs';
import { saveToBuffer, loadFromBuffer } from '../io/model-io';
import { crc32 } from '../io/safetensors';
import { validateGraph } from '../ir/validate';
import { defaultRegistry } from '../ops/registry';
import type { GraphDef } from '../ir/types';

/**
 * Mutations of saved model files for fuzzing `loadFromBuffer` (`pnpm fuzz`, and a fixed sample
 * in the tests). A mutation plan is plain data, drawn from a `ChoiceSource`: a seeded generator
 * (`createRng(seed)`) for a deterministic sample, or a list of numbers that fast-check generates
 * and shrinks. Positions and choices are taken modulo what the file has when the mutation runs,
 * so any number is valid and a shrunk plan stays readable.
 */

/** Where a plan draws its choices; `createRng(seed)` is one. */
export interface ChoiceSource {
  /** An integer in [0, n). */
  int(n: number): number;
}

/** A choice source reading a list of numbers (fast-check generates and shrinks the list); 0 past its end. */
export function choicesFrom(numbers: readonly number[]): ChoiceSource {
  let i = 0;
  return { int: (n) => (n <= 1 ? 0 : Math.abs(Math.trunc(numbers[i++] ?? 0)) % n) };
}

export type FileMutation =
  /** Flips one bit of the file. */
  | { kind: 'flipBit'; at: number; bit: number }
  /** Sets one byte of the file. */
  | { kind: 'setByte'; at: number; value: number }
  /** Sets one 4-byte float of the data section (NaN, Infinity, 2, -1...). */
  | { kind: 'setFloat'; at: number; value: number }
  /** Cuts the file to `length` bytes (modulo its length). */
  | { kind: 'truncate'; length: number }
  /** Removes `remove` bytes at `at` and inserts `insert` there. */
  | { kind: 'splice'; at: number; remove: number; insert: number[] }
  /** Overwrites the 8-byte header length. */
  | { kind: 'headerLength'; value: number }
  /**
   * Changes the JSON header: at the `path`-th value (walking the header and the JSON strings of
   * its metadata: graph, params, journal, training), `replace` it by `value`, `delete` it,
   * `copy` the `from`-th value there, `rename` an object key to `value`, `bump` a number by
   * `value`, or `duplicate` an array element.
   */
  | { kind: 'json'; op: 'replace' | 'delete' | 'copy' | 'rename' | 'bump' | 'duplicate'; path: number; from?: number; value?: unknown };

export interface MutationPlan {
  /** Index of the corpus file to start from (modulo the corpus size). */
  file: number;
  mutations: FileMutation[];
  /** Recompute the data checksum after mutating, so that the load reaches graph and table checks. */
  fixChecksum: boolean;
}

/** Values a JSON mutation writes. */
export const INTERESTING_VALUES: readonly unknown[] = [
  null, true, false, 0, -1, 1, 2, 3, 7, 0.5, -0, 1e9, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, -1e308,
  '', 'F32', 'I32', 'F16', 'BF16', 'x', 'fc1', 'fc1/kernel', 'fc1/kernel::mask', 'fc1/kernel::slot::m', '__proto__', 'constructor', 'toString',
  'dense', 'relu', 'conv2d', 'add', 'concat', 'layerNorm', 'flatten', 'maxPool2d', 'reshape', 'slice', 'embedding', 'softmax', 'nope',
  'same', 'valid', 'weight', 'bias', 'state', 'arch', 'float32', 'int32', 'rs-model', '1', '2', '00000000', 'zz',
  [], [0], [1], [2, 2], [-1], [null], [null, 3], [0, 0], [1, 2, 3], [2 ** 40, 2 ** 40], [1.5], ['x'], [[]],
  {}, { a: 1 }, { units: 0 }, { kind: 'zeros' }, { trainable: true, role: 'weight', hasMask: true }, { id: 'x', op: 'relu', inputs: [], attrs: {} },
];

const FLOATS = [NaN, Infinity, -Infinity, 2, -1, 0.5, 1e30, -0, 3.4e38, 1e-45];

const pick = <T>(src: ChoiceSource, list: readonly T[]): T => list[src.int(list.length)];

/** Draws a plan of 1 to 4 mutations. */
export function drawMutationPlan(src: ChoiceSource): MutationPlan {
  const file = src.int(1 << 16);
  const count = 1 + src.int(4);
  const mutations: FileMutation[] = [];
  for (let i = 0; i < count; i++) {
    const kind = src.int(10);
    const at = src.int(1 << 20);
    if (kind === 0) mutations.push({ kind: 'flipBit', at, bit: src.int(8) });
    else if (kind === 1) mutations.push({ kind: 'setByte', at, value: src.int(256) });
    else if (kind === 2) mutations.push({ kind: 'setFloat', at, value: pick(src, FLOATS) });
    else if (kind === 3) mutations.push({ kind: 'truncate', length: at });
    else if (kind === 4) mutations.push({ kind: 'splice', at, remove: src.int(16), insert: Array.from({ length: src.int(12) }, () => src.int(256)) });
    else if (kind === 5) mutations.push({ kind: 'headerLength', value: pick(src, [0, 1, 7, 8, 9, at, 2 ** 32 - 1, 2 ** 40, Number.MAX_SAFE_INTEGER]) });
    else {
      const op = pick(src, ['replace', 'replace', 'replace', 'delete', 'copy', 'rename', 'bump', 'duplicate'] as const);
      const m: FileMutation = { kind: 'json', op, path: at };
      if (op === 'copy') m.from = src.int(1 << 20);
      if (op === 'replace' || op === 'rename') m.value = pick(src, INTERESTING_VALUES);
      if (op === 'bump') m.value = pick(src, [1, -1, 2, -2, 4, -4, 8, 1000, -1000, 0.5]);
      mutations.push(m);
    }
  }
  return { file, mutations, fixChecksum: src.int(4) !== 0 };
}

// ---------------------------------------------------------------------------------------------
// The JSON header, with the metadata's JSON strings opened up.

/** The metadata entries that hold JSON text. */
const EMBEDDED = ['graph', 'params', 'journal', 'training'];

type Json = unknown;
type Slot = { parent: Record<string, Json> | Json[]; key: string | number };

interface Header {
  root: Record<string, Json>;
  /** Metadata keys whose JSON text was parsed (written back as text when still an object or array). */
  embedded: Set<string>;
}

function splitFile(bytes: Uint8Array): { header: Header; data: Uint8Array } | undefined {
  if (bytes.length < 8) return undefined;
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (length > bytes.length - 8) return undefined;
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length)));
  } catch {
    return undefined;
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return undefined;
  const header: Header = { root: root as Record<string, Json>, embedded: new Set() };
  const metadata = header.root.__metadata__;
  if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)) {
    for (const key of EMBEDDED) {
      const text = (metadata as Record<string, Json>)[key];
      if (typeof text !== 'string') continue;
      try {
        (metadata as Record<string, Json>)[key] = JSON.parse(text);
        header.embedded.add(key);
      } catch {
        // left as text
      }
    }
  }
  return { header, data: bytes.slice(8 + length) };
}

function joinFile(header: Header, data: Uint8Array, fixChecksum: boolean): Uint8Array {
  const metadata = header.root.__metadata__;
  if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)) {
    const m = metadata as Record<string, Json>;
    for (const key of header.embedded) if (typeof m[key] === 'object' && m[key] !== null) m[key] = JSON.stringify(m[key]);
    if (fixChecksum) m.checksum = crc32(data).toString(16).padStart(8, '0');
  }
  const json = new TextEncoder().encode(JSON.stringify(header.root));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  out.set(data, 8 + padded);
  return out;
}

/** Every value below the root, depth first, as (parent, key) slots. */
function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const walk = (value: Json): void => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        out.push({ parent: value, key: i });
        walk(v);
      });
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        out.push({ parent: value as Record<string, Json>, key: k });
        walk(v);
      }
    }
  };
  walk(root);
  return out;
}

const read = (s: Slot): Json => (s.parent as Record<string | number, Json>)[s.key];
const write = (s: Slot, v: Json): void => {
  (s.parent as Record<string | number, Json>)[s.key] = v;
};
const copyJson = (v: Json): Json => (v === undefined ? null : (JSON.parse(JSON.stringify(v)) as Json));

function mutateJson(header: Header, m: Extract<FileMutation, { kind: 'json' }>): void {
  const all = slots(header.root);
  if (all.length === 0) return;
  const slot = all[m.path % all.length];
  if (m.op === 'replace') {
    write(slot, copyJson(m.value));
  } else if (m.op === 'delete') {
    if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
    else delete slot.parent[slot.key as string];
  } else if (m.op === 'copy') {
    write(slot, copyJson(read(all[(m.from ?? 0) % all.length])));
  } else if (m.op === 'rename') {
    if (Array.isArray(slot.parent)) return;
    const value = slot.parent[slot.key as string];
    delete slot.parent[slot.key as string];
    slot.parent[typeof m.value === 'string' ? m.value : JSON.stringify(m.value)] = value;
  } else if (m.op === 'bump') {
    const v = read(slot);
    if (typeof v === 'number') write(slot, v + (m.value as number));
    else if (Array.isArray(v) && typeof v[0] === 'number') v[0] += m.value as number;
  } else if (m.op === 'duplicate') {
    const v = read(slot);
    if (Array.isArray(v) && v.length > 0) v.push(copyJson(v[v.length - 1]));
    else if (Array.isArray(slot.parent)) slot.parent.push(copyJson(v));
  }
}

/** Applies one mutation; returns the new file. */
export function applyMutation(bytes: Uint8Array, m: FileMutation, fixChecksum: boolean): Uint8Array {
  const n = bytes.length;
  switch (m.kind) {
    case 'flipBit': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      out[m.at % n] ^= 1 << (m.bit & 7);
      return out;
    }
    case 'setByte': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      out[m.at % n] = m.value & 0xff;
      return out;
    }
    case 'setFloat': {
      const file = splitFile(bytes);
      if (!file || file.data.length < 4) return bytes;
      const at = (m.at % Math.floor(file.data.length / 4)) * 4;
      new DataView(file.data.buffer, file.data.byteOffset).setFloat32(at, m.value, true);
      const out = bytes.slice();
      out.set(file.data, n - file.data.length);
      return out;
    }
    case 'truncate':
      return bytes.slice(0, n === 0 ? 0 : m.length % n);
    case 'splice': {
      const at = n === 0 ? 0 : m.at % (n + 1);
      const out = new Uint8Array(n - Math.min(m.remove, n - at) + m.insert.length);
      out.set(bytes.subarray(0, at));
      out.set(m.insert.map((b) => b & 0xff), at);
      out.set(bytes.subarray(Math.min(n, at + m.remove)), at + m.insert.length);
      return out;
    }
    case 'headerLength': {
      if (n < 8) return bytes;
      const out = bytes.slice();
      new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, Math.trunc(m.value))), true);
      return out;
    }
    case 'json': {
      const file = splitFile(bytes);
      if (!file) return bytes;
      mutateJson(file.header, m);
      return joinFile(file.header, file.data, fixChecksum);
    }
  }
}

/** The file a plan makes from the corpus. */
export function applyMutationPlan(corpus: readonly Uint8Array[], plan: MutationPlan): Uint8Array {
  let bytes = corpus[plan.file % corpus.length];
  for (const m of plan.mutations) bytes = applyMutation(bytes, m, plan.fixChecksum);
  if (plan.fixChecksum) {
    // Byte-level mutations too: recompute the checksum whenever the header still parses.
    const file = splitFile(bytes);
    if (file) bytes = joinFile(file.header, file.data, true);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------

/**
 * Valid saved models to mutate: a small MLP, a conv net, an edited MLP with masks and optimizer
 * slots (saved with its training state), and a random graph with residual adds, concats and
 * layerNorms.
 */
export function fuzzSeedFiles(): Uint8Array[] {
  const files: Uint8Array[] = [];
  const keep = (model: Model, options = {}): void => {
    files.push(new Uint8Array(saveToBuffer(model, options)));
    model.dispose();
  };
  keep(Model.create(lenet300100({ inputs: 6, hidden: [5, 4], classes: 3 }), { seed: 1 }));
  keep(Model.create(lenet5({ filters: [2, 3], hidden: [6, 5], classes: 3 }), { seed: 2 }));
  const edited = Model.create(lenet300100({ inputs: 5, hidden: [6, 4], classes: 3 }), { seed: 3 });
  edited.edit(
    (tx) => {
      tx.removeUnits('fc1', [1]);
      const mask = tf.tensor2d([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1], [5, 4]);
      tx.setMask('fc2/kernel', mask);
      mask.dispose();
      tx.setTrainable('fc3', false);
    },
    { technique: 'fuzz', reason: 'seed file' },
  );
  const slots = new Map<string, Map<string, Tensor>>();
  for (const key of edited.paramKeys()) {
    const shape = edited.param(key).value.shape;
    slots.set(key, new Map([['m', tf.fill(shape, 0.25)], ['v', tf.fill(shape, 0.5)]]));
  }
  edited.commitOptimizerUpdate(new Map(), slots);
  keep(edited, { includeOptimizerState: true });
  keep(Model.create(randomGraph(5, { norms: true, blocks: 3 }), { seed: 4 }));
  return files;
}

export type LoadOutcome =
  /** `applied` is false when the graph's inputs are too large to run quickly (a fixed batch of thousands). */
  | { outcome: 'loaded'; applied: boolean }
  | { outcome: 'refused'; code: string }
  | { outcome: 'crash'; error: unknown; stage: 'validate' | 'load' | 'apply' | 'dispose' | 'leak' };

/** Codes a corrupt file may be refused with. */
export const EXPECTED_LOAD_CODE = /^(IO_[A-Z_]+|UNKNOWN_OP)$/;

/** Inputs with more elements than this (all together) are not run after a load. */
export const MAX_APPLY_ELEMENTS = 65_536;

/**
 * Loads `bytes`; a loaded model must apply (a batch of 2 on every input, unless the inputs have
 * more than `MAX_APPLY_ELEMENTS` elements) and dispose without leaking. Anything but a load or an
 * `IO_*` / `UNKNOWN_OP` refusal is a crash.
 */
export function tryLoad(bytes: Uint8Array): LoadOutcome {
  // load maps any error of graph validation to IO_CORRUPT; validation itself must only throw
  // typed errors, so check it on the file's graph directly first.
  const graph = splitFile(bytes)?.header.root.__metadata__ as Record<string, unknown> | undefined;
  if (graph && typeof graph === 'object' && typeof graph.graph === 'object') {
    try {
      validateGraph(graph.graph as GraphDef, defaultRegistry);
    } catch (error) {
      if (!isRsError(error)) return { outcome: 'crash', error, stage: 'validate' };
    }
  }
  const start = tf.memory().numTensors;
  let model: Model;
  try {
    model = loadFromBuffer(bytes);
  } catch (error) {
    if (tf.memory().numTensors !== start) return { outcome: 'crash', error: new Error(`a failed load leaked ${tf.memory().numTensors - start} tensor(s)`), stage: 'leak' };
    if (isRsError(error) && EXPECTED_LOAD_CODE.test(error.code)) return { outcome: 'refused', code: error.code };
    return { outcome: 'crash', error, stage: 'load' };
  }
  const shapes = model.graph.inputs.map((input) => input.shape.map((d) => (d === null ? 2 : d)));
  const applied = shapes.reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0) <= MAX_APPLY_ELEMENTS;
  try {
    if (applied) {
      const inputs = model.graph.inputs.map((input, i) => (input.dtype === 'int32' ? tf.zeros(shapes[i], 'int32') : tf.randomNormal(shapes[i], 0, 1, 'float32', i)));
      try {
        tf.dispose(model.apply(inputs));
      } finally {
        tf.dispose(inputs);
      }
    }
  } catch (error) {
    model.dispose();
    return { outcome: 'crash', error, stage: 'apply' };
  }
  try {
    model.dispose();
  } catch (error) {
    return { outcome: 'crash', error, stage: 'dispose' };
  }
  if (tf.memory().numTensors !== start) return { outcome: 'crash', error: new Error(`a loaded model leaked ${tf.memory().numTensors - start} tensor(s)`), stage: 'leak' };
  return { outcome: 'loaded', applied };
}
