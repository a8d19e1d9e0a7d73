import { tf, type Tensor } from '../tf';
import { applyMask } from '../ir/mask';
import { RsError, formatShape, isRsError } from '../errors';
import type { GraphDef, ParamRole, ParamSpec } from '../ir/types';
import { validateGraph, type ValidatedGraph } from '../ir/validate';
import { defaultRegistry, type OpRegistry } from '../ops/registry';
import { Model, type ParamEntry } from '../model';
import { checkSingleInstance, requireBackend } from '../instance';
import type { JournalEntry } from '../edit/journal';
import { HOST_IS_LITTLE_ENDIAN, crc32, decodeSafetensors, encodeSafetensors, swapBytes4, type RawTensor } from './safetensors';

/*
 * File format (`.rsm`): one safetensors buffer.
 * - tensors: every parameter value under its key (`fc1/kernel`, F32), its mask under
 *   `<key>::mask` (F32), and with `includeOptimizerState` each optimizer slot under
 *   `<key>::slot::<name>` (`fc1/kernel::slot::m`), in that order, parameters in graph order.
 * - `__metadata__`: `format` = "rs-model", `version` = "1", `graph` (JSON GraphDef), `params`
 *   (JSON: key -> { trainable, role, hasMask }), `journal` (JSON array of JournalEntry) and
 *   `checksum` (CRC-32 of the whole data section, 8 lowercase hex digits); with
 *   `includeOptimizerState` also `training` (JSON: { optimizerSteps, rng }: the optimizer's step
 *   count per parameter key and the model generator's state, so that training resumes
 *   bit-identically).
 */

const FORMAT = 'rs-model';
const VERSION = '1';
const MASK_SUFFIX = '::mask';
const SLOT_INFIX = '::slot::';
const ROLES: readonly ParamRole[] = ['weight', 'bias', 'arch', 'state'];

export interface SaveOptions {
  /** Also save optimizer state (Adam moments...), to resume training exactly. Default false. */
  includeOptimizerState?: boolean;
}

export interface LoadOptions {
  /** Registry that knows every op of the saved graph (plugins). Default: defaultRegistry. */
  registry?: OpRegistry;
  /**
   * Seed of the loaded model's generator (dropout/noise). Default: the saved generator state
   * when the file has training state (`includeOptimizerState`), else seed 0.
   */
  seed?: number;
  /**
   * Refuse weights, masks or optimizer slots that hold NaN or Infinity (`IO_CORRUPT`, naming
   * every such tensor). Default false: such a model loads, and `nonFiniteParams(model)` lists them.
   */
  requireFinite?: boolean;
}

interface ParamMeta {
  trainable: boolean;
  role: ParamRole;
  hasMask: boolean;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The tensor's values as file bytes (little-endian), copied exactly. Call outside tf.tidy. */
function rawOf(t: Tensor, name: string): RawTensor {
  if (t.dtype !== 'float32' && t.dtype !== 'int32') {
    throw new RsError('INVALID_ARGUMENT', `Cannot save '${name}': its dtype is ${t.dtype}; only float32 and int32 tensors can be saved.`, { tensor: name });
  }
  let values = t.dataSync() as ArrayLike<number> as Float32Array | Int32Array;
  // A backend may keep another typed array behind a tensor (a cast from bool): convert.
  if (t.dtype === 'float32' && !(values instanceof Float32Array)) values = Float32Array.from(values);
  if (t.dtype === 'int32' && !(values instanceof Int32Array)) values = Int32Array.from(values);
  let data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (!HOST_IS_LITTLE_ENDIAN) {
    data = data.slice();
    swapBytes4(data);
  }
  return { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: [...t.shape], data };
}

/**
 * Serialises graph, parameters, masks, journal (and optionally optimizer state) into one
 * safetensors buffer. Synchronous; works in Node and in browsers.
 *
 * @example
 * const bytes = saveToBuffer(model);
 * const copy = loadFromBuffer(bytes);
 */
export function saveToBuffer(model: Model, options: SaveOptions = {}): ArrayBuffer {
  const state = model.internalState;
  const tensors = new Map<string, RawTensor>();
  const params: Record<string, ParamMeta> = {};
  for (const [key, entry] of state.params) {
    tensors.set(key, rawOf(entry.value, key));
    if (entry.mask) tensors.set(key + MASK_SUFFIX, rawOf(entry.mask, key + MASK_SUFFIX));
    params[key] = { trainable: entry.trainable, role: entry.role, hasMask: entry.mask !== undefined };
  }
  if (options.includeOptimizerState) {
    for (const [key, slots] of state.slots) {
      if (!state.params.has(key)) continue;
      for (const [name, t] of slots) tensors.set(key + SLOT_INFIX + name, rawOf(t, key + SLOT_INFIX + name));
    }
  }
  const training: Record<string, string> = options.includeOptimizerState ? { training: JSON.stringify({ optimizerSteps: Object.fromEntries(state.optimizerSteps), rng: model.rng.state() }) } : {};
  // The data section is the tensors back to back in this order: checksum it piece by piece.
  let checksum = 0;
  for (const t of tensors.values()) checksum = crc32(t.data, checksum);
  const bytes = encodeSafetensors({
    tensors,
    metadata: {
      format: FORMAT,
      version: VERSION,
      graph: JSON.stringify(state.graph),
      params: JSON.stringify(params),
      journal: JSON.stringify(state.journal),
      checksum: checksum.toString(16).padStart(8, '0'),
      ...training,
    },
  });
  // encodeSafetensors allocates exactly the file's size.
  return bytes.buffer as ArrayBuffer;
}

function parseJson(text: string | undefined, what: string): unknown {
  if (text === undefined) throw new RsError('IO_CORRUPT', `The file has no ${what} in its metadata.`);
  try {
    return JSON.parse(text);
  } catch {
    throw new RsError('IO_CORRUPT', `The ${what} in the file's metadata is not valid JSON.`);
  }
}

function parseParamTable(text: string | undefined): Map<string, ParamMeta> {
  const table = parseJson(text, 'parameter table');
  if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new RsError('IO_CORRUPT', 'The parameter table in the file is not a JSON object.');
  const out = new Map<string, ParamMeta>();
  for (const [key, value] of Object.entries(table)) {
    const v = value as Partial<ParamMeta> | null;
    if (typeof v !== 'object' || v === null || typeof v.trainable !== 'boolean' || typeof v.hasMask !== 'boolean' || !ROLES.includes(v.role as ParamRole)) {
      throw new RsError('IO_CORRUPT', `The parameter table entry for '${key}' is malformed: ${JSON.stringify(value)} (expected { trainable, role, hasMask }).`, { param: key });
    }
    out.set(key, { trainable: v.trainable, role: v.role as ParamRole, hasMask: v.hasMask });
  }
  return out;
}

function checkGraph(graph: unknown, registry: OpRegistry): ValidatedGraph {
  try {
    return validateGraph(graph as GraphDef, registry);
  } catch (error) {
    // An op this registry does not know keeps its own code: the fix is to register a plugin.
    if (isRsError(error, 'UNKNOWN_OP')) throw error;
    // A graph that is not even shaped like one (null nodes, missing arrays) is a corrupt file.
    if (isRsError(error, 'INVALID_GRAPH')) throw new RsError('IO_CORRUPT', `The saved graph is malformed: ${error.message}`, { cause: error.code, ...error.details });
    if (isRsError(error)) {
      throw new RsError('IO_MISMATCH', `The saved graph is not valid with this registry: ${error.message}`, { cause: error.code, ...error.details });
    }
    throw new RsError('IO_CORRUPT', `The saved graph is malformed (${(error as Error)?.message ?? String(error)}).`);
  }
}

/** The `training` metadata: the optimizer's step count and the model generator's state. */
function parseTraining(text: unknown): { optimizerSteps: Map<string, number>; rng: number[] } {
  if (typeof text !== 'string') throw new RsError('IO_CORRUPT', 'The training state in the file\'s metadata is not a string.');
  const value = parseJson(text, 'training state') as { optimizerSteps?: unknown; rng?: unknown } | null;
  const steps = value?.optimizerSteps;
  const rng = value?.rng;
  const count = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  const valid =
    typeof value === 'object' &&
    value !== null &&
    typeof steps === 'object' &&
    steps !== null &&
    !Array.isArray(steps) &&
    Object.values(steps).every(count) &&
    Array.isArray(rng) &&
    rng.length === 4 &&
    rng.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff);
  if (!valid) throw new RsError('IO_CORRUPT', `The training state in the file is malformed: ${text.slice(0, 200)} (expected { optimizerSteps: { key: count }, rng: [4 x uint32] }).`);
  return { optimizerSteps: new Map(Object.entries(steps as Record<string, number>)), rng: rng as number[] };
}

/** True when every float32 value in the little-endian bytes is finite. */
function allFinite(data: Uint8Array): boolean {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + 4 <= data.byteLength; i += 4) {
    // An IEEE-754 float is NaN or infinite exactly when all its exponent bits are set.
    if ((view.getUint32(i, true) & 0x7f800000) === 0x7f800000) return false;
  }
  return true;
}

/**
 * Keys of the parameters (and masks, and optimizer slots) whose values hold NaN or Infinity:
 * a quick health check after loading or training (`rs inspect` prints it).
 *
 * @example
 * const bad = nonFiniteTensors(model); // [] for a healthy model
 */
export function nonFiniteTensors(model: Model): string[] {
  const bad: string[] = [];
  const check = (name: string, t: Tensor): void => {
    if (t.dtype === 'float32' && tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(t))).dataSync()[0]) !== 0) bad.push(name);
  };
  const state = model.internalState;
  for (const [key, entry] of state.params) {
    check(key, entry.value);
    if (entry.mask) check(key + MASK_SUFFIX, entry.mask);
  }
  for (const [key, slots] of state.slots) for (const [name, t] of slots) check(key + SLOT_INFIX + name, t);
  return bad;
}

function mismatch(message: string, details: Record<string, unknown>): RsError {
  return new RsError('IO_MISMATCH', message, details);
}

/**
 * Reads a model saved by `saveToBuffer`. Everything is checked before any tensor is created:
 * truncated (`IO_TRUNCATED`), corrupt (`IO_CORRUPT`, including a CRC32 of the data), not a model
 * (`IO_NOT_A_MODEL`), other version (`IO_UNSUPPORTED_VERSION`), weights that do not fit the
 * graph (`IO_MISMATCH`); ops unknown to the registry raise `UNKNOWN_OP`. A failed load leaves no
 * tensor behind.
 *
 * @example
 * const model = loadFromBuffer(await (await fetch('/model.rsm')).arrayBuffer());
 */
export function loadFromBuffer(buffer: ArrayBuffer | Uint8Array, options: LoadOptions = {}): Model {
  const { tensors, metadata, data } = decodeSafetensors(buffer);
  if (metadata.format !== FORMAT) {
    throw new RsError('IO_NOT_A_MODEL', `This safetensors file is not an rs model (metadata format ${JSON.stringify(metadata.format ?? null)}, expected "${FORMAT}").`, {
      format: metadata.format ?? null,
    });
  }
  if (metadata.version !== VERSION) {
    throw new RsError('IO_UNSUPPORTED_VERSION', `The file has format version ${JSON.stringify(metadata.version ?? null)}; this @rs/core reads version "${VERSION}".`, {
      version: metadata.version ?? null,
      supported: [VERSION],
    });
  }
  const stored = metadata.checksum;
  if (typeof stored !== 'string' || !/^[0-9a-f]{8}$/i.test(stored)) throw new RsError('IO_CORRUPT', `The file has no valid checksum (${JSON.stringify(stored ?? null)}).`);
  const actual = crc32(data);
  if (parseInt(stored, 16) !== actual) {
    throw new RsError('IO_CORRUPT', `The data section's CRC32 does not match (stored ${stored}, computed ${actual.toString(16).padStart(8, '0')}): the file is corrupt.`, {
      stored,
      computed: actual.toString(16).padStart(8, '0'),
    });
  }
  const graph = parseJson(metadata.graph, 'graph');
  if (typeof graph !== 'object' || graph === null || Array.isArray(graph)) throw new RsError('IO_CORRUPT', 'The graph in the file is not a JSON object.');
  const meta = parseParamTable(metadata.params);
  const journal = parseJson(metadata.journal, 'journal');
  if (!Array.isArray(journal) || journal.some((e) => typeof e !== 'object' || e === null || Array.isArray(e))) {
    throw new RsError('IO_CORRUPT', 'The journal in the file is not an array of entries.');
  }
  const training = metadata.training === undefined ? undefined : parseTraining(metadata.training);
  const registry = options.registry ?? defaultRegistry;
  const validated = checkGraph(graph, registry);
  const specs: Map<string, ParamSpec> = validated.paramSpecs;

  // Parameters and masks: exactly those of the graph, with the graph's shapes.
  const used = new Set<string>();
  for (const [key, spec] of specs) {
    const t = tensors.get(key);
    if (!t) throw mismatch(`The graph needs parameter '${key}' ${formatShape(spec.shape)}, which the file does not have.`, { param: key, expected: spec.shape });
    if (!sameShape(t.shape, spec.shape)) {
      throw mismatch(`Parameter '${key}' has shape ${formatShape(t.shape)} in the file but the graph needs ${formatShape(spec.shape)}.`, { param: key, actual: t.shape, expected: spec.shape });
    }
    if (t.dtype !== 'F32') throw mismatch(`Parameter '${key}' must be F32; the file has ${t.dtype}.`, { param: key, dtype: t.dtype });
    used.add(key);
    const info = meta.get(key);
    if (!info) throw mismatch(`The file's parameter table has no entry for '${key}'.`, { param: key });
    const mask = tensors.get(key + MASK_SUFFIX);
    if (info.hasMask) {
      if (!mask) throw mismatch(`The mask of '${key}' is missing from the file.`, { param: key });
      if (!sameShape(mask.shape, spec.shape)) {
        throw mismatch(`The mask of '${key}' has shape ${formatShape(mask.shape)} but the parameter has shape ${formatShape(spec.shape)}.`, {
          param: key,
          actual: mask.shape,
          expected: spec.shape,
        });
      }
      if (mask.dtype !== 'F32') throw mismatch(`The mask of '${key}' must be F32; the file has ${mask.dtype}.`, { param: key, dtype: mask.dtype });
      used.add(key + MASK_SUFFIX);
    } else if (mask) {
      throw mismatch(`The file has a mask for '${key}' but its parameter table says it has none.`, { param: key });
    }
  }
  for (const key of meta.keys()) {
    if (!specs.has(key)) throw mismatch(`The file's parameter table lists '${key}', which the graph does not have.`, { param: key });
  }
  // Everything else must be an optimizer slot of a known parameter, with that parameter's shape.
  const slotTensors: [owner: string, name: string, t: RawTensor][] = [];
  for (const [name, t] of tensors) {
    if (used.has(name)) continue;
    const at = name.lastIndexOf(SLOT_INFIX);
    const owner = at >= 0 ? name.slice(0, at) : undefined;
    const spec = owner === undefined ? undefined : specs.get(owner);
    if (owner === undefined || !spec) {
      const what = owner === undefined ? `parameter '${name}'` : `optimizer slot '${name}' of '${owner}'`;
      throw mismatch(`The file has ${what} ${formatShape(t.shape)}, which the graph does not have.`, { tensor: name, actual: t.shape });
    }
    if (!sameShape(t.shape, spec.shape)) {
      throw mismatch(`Optimizer slot '${name}' has shape ${formatShape(t.shape)} but its parameter '${owner}' has shape ${formatShape(spec.shape)}.`, {
        tensor: name,
        actual: t.shape,
        expected: spec.shape,
      });
    }
    if (t.dtype !== 'F32') throw mismatch(`Optimizer slot '${name}' must be F32; the file has ${t.dtype}.`, { tensor: name, dtype: t.dtype });
    slotTensors.push([owner, name.slice(at + SLOT_INFIX.length), t]);
  }

  if (options.requireFinite) {
    const bad = [...tensors].filter(([, t]) => t.dtype === 'F32' && !allFinite(t.data)).map(([name]) => name);
    if (bad.length > 0) {
      throw new RsError('IO_CORRUPT', `The file holds NaN or Infinity in ${bad.length} tensor(s): ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ', ...' : ''} (loaded with requireFinite).`, { tensors: bad });
    }
  }

  // Every check of the file passed; creating tensors needs one engine with a backend.
  checkSingleInstance();
  requireBackend('loadFromBuffer');
  // Create tensors, disposing them all if anything still fails.
  const created: Tensor[] = [];
  const make = (t: RawTensor): Tensor => {
    const bytes = new Uint8Array(t.data); // own, aligned copy of the file's bytes
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes4(bytes);
    const values = t.dtype === 'F32' ? new Float32Array(bytes.buffer) : new Int32Array(bytes.buffer);
    // keep: a load inside a caller's tf.tidy must not lose the model's tensors.
    const tensor = tf.keep(tf.tensor(values, t.shape, t.dtype === 'F32' ? 'float32' : 'int32'));
    created.push(tensor);
    return tensor;
  };
  try {
    const params = new Map<string, ParamEntry>();
    for (const key of specs.keys()) {
      const info = meta.get(key) as ParamMeta;
      const entry: ParamEntry = { value: make(tensors.get(key) as RawTensor), trainable: info.trainable, role: info.role };
      if (info.hasMask) {
        entry.mask = make(tensors.get(key + MASK_SUFFIX) as RawTensor);
        // Every stored value is masked (forward passes rely on it); a file written elsewhere may not be.
        const unmasked = entry.value;
        entry.value = tf.keep(tf.tidy(() => applyMask(unmasked, entry.mask)));
        created.push(entry.value);
        created.splice(created.indexOf(unmasked), 1);
        unmasked.dispose();
      }
      params.set(key, entry);
    }
    const slots = new Map<string, Map<string, Tensor>>();
    for (const [owner, name, t] of slotTensors) {
      const map = slots.get(owner) ?? new Map<string, Tensor>();
      map.set(name, make(t));
      slots.set(owner, map);
    }
    const state = { graph: graph as GraphDef, params, slots, journal: journal as JournalEntry[], optimizerSteps: new Map([...(training?.optimizerSteps ?? [])].filter(([key]) => specs.has(key))) };
    const resume = options.seed === undefined ? training?.rng : undefined;
    return Model.fromState(state, registry, options.seed ?? 0, resume);
  } catch (error) {
    tf.dispose(created);
    throw error;
  }
}

/**
 * Saves to a file (Node only). The model is read synchronously when `save` is called; the file
 * is written to a temporary name first and then renamed, so a crash never leaves half a file.
 *
 * @example
 * await save(model, 'lenet.rsm');
 */
export async function save(model: Model, path: string, options: SaveOptions = {}): Promise<void> {
  const bytes = new Uint8Array(saveToBuffer(model, options));
  const fs = await import('node:fs/promises');
  const temporary = `${path}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  try {
    await fs.writeFile(temporary, bytes);
    await fs.rename(temporary, path);
  } catch (error) {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Loads a file written by `save` (Node only). Errors as `loadFromBuffer`; file-system errors
 * (a missing file: `ENOENT`) are Node's own.
 *
 * @example
 * const model = await load('lenet.rsm');
 */
export async function load(path: string, options: LoadOptions = {}): Promise<Model> {
  const fs = await import('node:fs/promises');
  const bytes = await fs.readFile(path);
  return loadFromBuffer(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), options);
}
