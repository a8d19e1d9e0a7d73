import { tf, type Tensor } from '../tf';
import { RsError, formatShape } from '../errors';
import type { GraphDef, ParamRole } from '../ir/types';
import { validateGraph } from '../ir/validate';
import { defaultRegistry, type OpRegistry } from '../ops/registry';
import { Model, type ParamEntry } from '../model';
import type { JournalEntry } from '../edit/journal';
import { crc32, decodeSafetensors, encodeSafetensors, type RawTensor } from './safetensors';

const FORMAT = 'rs-model';
const VERSION = '1';
const MASK = '::mask';
const SLOT = '::slot::';

export interface SaveOptions {
  /** Also save optimizer state (Adam moments), to resume training exactly. Default false. */
  includeOptimizerState?: boolean;
}

export interface LoadOptions {
  /** Registry that knows every op of the saved graph (plugins). Default: defaultRegistry. */
  registry?: OpRegistry;
  /** Seed of the loaded model's generator (dropout/noise). Default 0. */
  seed?: number;
}

interface ParamMeta {
  trainable: boolean;
  role: ParamRole;
  mask: boolean;
}

function raw(t: Tensor): RawTensor {
  // dataSync copies into a fresh typed array; its bytes are the tensor's values exactly.
  let values = t.dataSync() as Float32Array | Int32Array;
  // Some kernels (a cast from bool) keep another typed array behind a float32 tensor.
  if (t.dtype === 'int32' && !(values instanceof Int32Array)) values = Int32Array.from(values);
  if (t.dtype !== 'int32' && !(values instanceof Float32Array)) values = Float32Array.from(values);
  return { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: [...t.shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/**
 * Serialises graph, parameters, masks, journal (and optionally optimizer state) into one
 * safetensors buffer. Works in Node and in browsers.
 *
 * @example
 * const bytes = saveToBuffer(model);
 * const copy = loadFromBuffer(bytes);
 */
export function saveToBuffer(model: Model, options: SaveOptions = {}): Uint8Array {
  const state = model.internalState;
  const tensors = new Map<string, RawTensor>();
  const params: Record<string, ParamMeta> = {};
  for (const [key, entry] of state.params) {
    tensors.set(key, raw(entry.value));
    if (entry.mask) tensors.set(key + MASK, raw(entry.mask));
    params[key] = { trainable: entry.trainable, role: entry.role, mask: entry.mask !== undefined };
  }
  if (options.includeOptimizerState) {
    for (const [key, slots] of state.slots) for (const [name, t] of slots) tensors.set(`${key}${SLOT}${name}`, raw(t));
  }
  let total = 0;
  for (const t of tensors.values()) total += t.data.byteLength;
  const data = new Uint8Array(total);
  let at = 0;
  for (const t of tensors.values()) {
    data.set(t.data, at);
    at += t.data.byteLength;
  }
  return encodeSafetensors({
    tensors,
    metadata: {
      format: FORMAT,
      version: VERSION,
      graph: JSON.stringify(state.graph),
      params: JSON.stringify(params),
      journal: JSON.stringify(state.journal),
      checksum: crc32(data).toString(16),
    },
  });
}

function parseJson<T>(text: string | undefined, what: string): T {
  if (text === undefined) throw new RsError('IO_CORRUPT', `The file has no ${what} in its metadata.`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new RsError('IO_CORRUPT', `The ${what} in the file's metadata is not valid JSON.`);
  }
}

/**
 * Reads a model saved by `saveToBuffer`. Everything is checked before any tensor is created:
 * truncated (`IO_TRUNCATED`), corrupt (`IO_CORRUPT`, including a CRC32 of the data), not a model
 * (`IO_NOT_A_MODEL`), other version (`IO_UNSUPPORTED_VERSION`), weights that do not fit the
 * graph (`IO_MISMATCH`); graph errors keep their own codes (`UNKNOWN_OP`...).
 *
 * @example
 * const model = loadFromBuffer(await (await fetch('/model.rsm')).arrayBuffer());
 */
export function loadFromBuffer(buffer: ArrayBuffer | Uint8Array, options: LoadOptions = {}): Model {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const { tensors, metadata, dataStart } = decodeSafetensors(bytes);
  if (metadata.format !== FORMAT) {
    throw new RsError('IO_NOT_A_MODEL', `This safetensors file is not an rs model (metadata format ${JSON.stringify(metadata.format ?? null)}, expected "${FORMAT}").`);
  }
  if (metadata.version !== VERSION) {
    throw new RsError('IO_UNSUPPORTED_VERSION', `The file has format version ${JSON.stringify(metadata.version)}; this @rs/core reads version ${VERSION}.`);
  }
  const expected = parseInt(metadata.checksum ?? '', 16);
  const actual = crc32(bytes.subarray(dataStart));
  if (!Number.isFinite(expected) || expected !== actual) {
    throw new RsError('IO_CORRUPT', `The data section's checksum does not match (stored ${metadata.checksum}, computed ${actual.toString(16)}): the file is corrupt.`);
  }
  const graph = parseJson<GraphDef>(metadata.graph, 'graph');
  const meta = parseJson<Record<string, ParamMeta>>(metadata.params, 'parameter table');
  const journal = parseJson<JournalEntry[]>(metadata.journal, 'journal');
  if (!Array.isArray(journal)) throw new RsError('IO_CORRUPT', 'The journal in the file is not an array.');
  const registry = options.registry ?? defaultRegistry;
  const validated = validateGraph(graph, registry);

  const used = new Set<string>();
  for (const [key, spec] of validated.paramSpecs) {
    const t = tensors.get(key);
    if (!t) throw new RsError('IO_MISMATCH', `The graph needs parameter '${key}' ${formatShape(spec.shape)}, which the file does not have.`, { param: key });
    if (t.shape.join(',') !== spec.shape.join(',')) {
      throw new RsError('IO_MISMATCH', `Parameter '${key}' has shape ${formatShape(t.shape)} in the file but the graph needs ${formatShape(spec.shape)}.`, { param: key });
    }
    if (t.dtype !== 'F32') throw new RsError('IO_MISMATCH', `Parameter '${key}' must be F32, the file has ${t.dtype}.`, { param: key });
    used.add(key);
    const info = meta[key];
    if (!info) throw new RsError('IO_MISMATCH', `The parameter table has no entry for '${key}'.`, { param: key });
    if (info.mask) {
      const mask = tensors.get(key + MASK);
      if (!mask || mask.shape.join(',') !== spec.shape.join(',')) {
        throw new RsError('IO_MISMATCH', `The mask of '${key}' is missing or has shape ${mask ? formatShape(mask.shape) : 'none'} instead of ${formatShape(spec.shape)}.`, { param: key });
      }
      used.add(key + MASK);
    }
  }
  for (const name of tensors.keys()) {
    if (used.has(name)) continue;
    const slotAt = name.indexOf(SLOT);
    const owner = slotAt >= 0 ? name.slice(0, slotAt) : undefined;
    if (owner === undefined || !validated.paramSpecs.has(owner)) {
      throw new RsError('IO_MISMATCH', `The file has tensor '${name}', which the graph does not use.`, { tensor: name });
    }
    if (tensors.get(name)?.shape.join(',') !== validated.paramSpecs.get(owner)?.shape.join(',')) {
      throw new RsError('IO_MISMATCH', `Optimizer slot '${name}' does not have the shape of '${owner}'.`, { tensor: name });
    }
  }

  // Every check passed: now create tensors.
  const make = (t: RawTensor): Tensor => {
    const aligned = t.data.slice();
    const values = t.dtype === 'F32' ? new Float32Array(aligned.buffer) : new Int32Array(aligned.buffer);
    return tf.keep(tf.tensor(values, t.shape, t.dtype === 'F32' ? 'float32' : 'int32'));
  };
  const params = new Map<string, ParamEntry>();
  const slots = new Map<string, Map<string, Tensor>>();
  for (const key of validated.paramSpecs.keys()) {
    const info = meta[key];
    params.set(key, {
      value: make(tensors.get(key) as RawTensor),
      trainable: info.trainable,
      role: info.role,
      ...(info.mask ? { mask: make(tensors.get(key + MASK) as RawTensor) } : {}),
    });
  }
  for (const [name, t] of tensors) {
    const slotAt = name.indexOf(SLOT);
    if (slotAt < 0) continue;
    const owner = name.slice(0, slotAt);
    const map = slots.get(owner) ?? new Map<string, Tensor>();
    map.set(name.slice(slotAt + SLOT.length), make(t));
    slots.set(owner, map);
  }
  return Model.fromState({ graph, params, slots, journal }, registry, options.seed ?? 0);
}

/**
 * Saves to a file (Node only).
 *
 * @example
 * await save(model, 'lenet.rsm');
 */
export async function save(model: Model, path: string, options: SaveOptions = {}): Promise<void> {
  const fs = await import('node:fs/promises');
  await fs.writeFile(path, saveToBuffer(model, options));
}

/**
 * Loads a file written by `save` (Node only).
 *
 * @example
 * const model = await load('lenet.rsm');
 */
export async function load(path: string, options: LoadOptions = {}): Promise<Model> {
  const fs = await import('node:fs/promises');
  const bytes = await fs.readFile(path);
  return loadFromBuffer(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), options);
}
