import { RsError } from '../errors';

/**
 * A minimal reader/writer of the safetensors layout:
 *
 *   bytes 0..8     N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N   UTF-8 JSON header, padded with spaces so that N is a multiple of 8:
 *                  { "<name>": { "dtype": "F32" | "I32", "shape": [...], "data_offsets": [begin, end] },
 *                    "__metadata__": { "<key>": "<string value>" } }
 *   bytes 8+N..    the data section: every tensor's little-endian bytes, back to back in header
 *                  order, with no holes; offsets are relative to the start of the data section.
 *
 * Only the dtypes this library uses (F32, I32) are supported.
 */

export type SafetensorsDtype = 'F32' | 'I32';

/** One tensor of a safetensors file: its bytes exactly as in the file (little-endian), dtype and shape. */
export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsContent {
  /** Tensors in data order (the order they are written in, and read back in). */
  tensors: Map<string, RawTensor>;
  /** The `__metadata__` table (string to string). */
  metadata: Record<string, string>;
}

export interface DecodedSafetensors extends SafetensorsContent {
  /** Byte offset of the data section in the buffer that was decoded. */
  dataStart: number;
  /** The whole data section (a view into the decoded buffer). */
  data: Uint8Array;
}

/** The largest header accepted (the limit of the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';
const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, I32: 4 };

/** True on little-endian hosts (all current JS engines); typed arrays then match the file. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Reverses the byte order of every 4-byte element, in place (for big-endian hosts). */
export function swapBytes4(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const a = bytes[i];
    const b = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Writes the safetensors layout. Tensors are laid out in the map's order; the header keeps that
 * order too (it is written by hand, because JS objects would move integer-like names first).
 */
export function encodeSafetensors(content: SafetensorsContent): Uint8Array {
  const parts: string[] = [];
  let offset = 0;
  for (const [name, t] of content.tensors) {
    if (name === METADATA_KEY || name.length === 0) throw new RsError('INVALID_ARGUMENT', `A tensor cannot be named ${JSON.stringify(name)}.`);
    if (!(t.dtype in BYTES_PER_ELEMENT)) throw new RsError('INVALID_ARGUMENT', `Tensor '${name}' has unsupported dtype ${JSON.stringify(t.dtype)}.`);
    const expected = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new RsError('INVALID_ARGUMENT', `Tensor '${name}' has shape ${JSON.stringify(t.shape)} (${expected} bytes) but ${t.data.byteLength} bytes of data.`);
    }
    const entry = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset += expected;
  }
  for (const [key, value] of Object.entries(content.metadata)) {
    if (typeof value !== 'string') throw new RsError('INVALID_ARGUMENT', `Metadata '${key}' must be a string.`);
  }
  parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(content.metadata)}`);
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLength); // pad with spaces
  let at = 8 + headerLength;
  for (const t of content.tensors.values()) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Reads the safetensors layout, checking every length and offset. Tensor data are views into
 * `input` (copy them before keeping them). Throws `IO_TRUNCATED` when the buffer is shorter than
 * what its header announces, `IO_CORRUPT` for anything malformed.
 */
export function decodeSafetensors(input: Uint8Array | ArrayBuffer): DecodedSafetensors {
  // A plain Uint8Array view (a Node Buffer's slice() would not copy).
  const bytes = input instanceof Uint8Array ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : new Uint8Array(input);
  if (bytes.byteLength < 8) {
    throw new RsError('IO_TRUNCATED', `The buffer has ${bytes.byteLength} bytes; a safetensors file starts with an 8-byte header length.`, { bytes: bytes.byteLength });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const announced = view.getBigUint64(0, true);
  if (announced > BigInt(MAX_HEADER_BYTES)) {
    throw new RsError('IO_CORRUPT', `The header length ${announced} is implausible (more than ${MAX_HEADER_BYTES} bytes): this is not a safetensors file, or it is corrupt.`);
  }
  const headerLength = Number(announced);
  const dataStart = 8 + headerLength;
  if (dataStart > bytes.byteLength) {
    throw new RsError('IO_TRUNCATED', `The header announces ${headerLength} bytes but only ${bytes.byteLength - 8} follow.`, { announced: headerLength, available: bytes.byteLength - 8 });
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    throw new RsError('IO_CORRUPT', `The safetensors header is not valid UTF-8 JSON (${(error as Error).message}).`);
  }
  if (!isPlainObject(header)) throw new RsError('IO_CORRUPT', 'The safetensors header is not a JSON object.');

  const metadataRaw = header[METADATA_KEY] ?? {};
  if (!isPlainObject(metadataRaw) || Object.values(metadataRaw).some((v) => typeof v !== 'string')) {
    throw new RsError('IO_CORRUPT', 'The safetensors __metadata__ must map strings to strings.');
  }

  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    if (!isPlainObject(entry)) throw new RsError('IO_CORRUPT', `Header entry '${name}' is not an object.`, { tensor: name });
    const { dtype, shape, data_offsets: offsets } = entry;
    if (dtype !== 'F32' && dtype !== 'I32') {
      throw new RsError('IO_CORRUPT', `Tensor '${name}' has unknown or unsupported dtype ${JSON.stringify(dtype)} (F32 and I32 are supported).`, { tensor: name });
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new RsError('IO_CORRUPT', `Tensor '${name}' has an invalid shape ${JSON.stringify(shape)}.`, { tensor: name });
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      throw new RsError('IO_CORRUPT', `Tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}.`, { tensor: name });
    }
    const [begin, end] = offsets as [number, number];
    const expected = elementCount(shape as number[]) * BYTES_PER_ELEMENT[dtype];
    if (expected !== end - begin) {
      throw new RsError('IO_CORRUPT', `Tensor '${name}' has shape ${JSON.stringify(shape)} (${expected} bytes) but data_offsets [${begin}, ${end}] (${end - begin} bytes).`, { tensor: name });
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }

  // The tensors must tile the data section exactly: from 0, no overlap, no hole.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (let i = 0; i < byOffset.length; i++) {
    const e = byOffset[i];
    if (e.begin < covered) {
      throw new RsError('IO_CORRUPT', `Tensors '${byOffset[i - 1].name}' and '${e.name}' overlap in the data section.`, { tensors: [byOffset[i - 1].name, e.name] });
    }
    if (e.begin > covered) {
      throw new RsError('IO_CORRUPT', `The data section has a hole of ${e.begin - covered} bytes before tensor '${e.name}'.`, { tensor: e.name });
    }
    covered = e.end;
  }
  const dataLength = bytes.byteLength - dataStart;
  if (covered > dataLength) {
    throw new RsError('IO_TRUNCATED', `The header announces ${covered} bytes of tensor data but only ${dataLength} follow it.`, { announced: covered, available: dataLength });
  }
  if (covered < dataLength) {
    throw new RsError('IO_CORRUPT', `The data section has ${dataLength - covered} bytes after the last tensor.`, { extra: dataLength - covered });
  }

  const data = bytes.subarray(dataStart);
  const tensors = new Map<string, RawTensor>();
  for (const e of byOffset) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: data.subarray(e.begin, e.end) });
  return { tensors, metadata: { ...(metadataRaw as Record<string, string>) }, dataStart, data };
}

let crcTable: Uint32Array | undefined;

function table(): Uint32Array {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  return crcTable;
}

/**
 * CRC-32 (IEEE 802.3, as in zip and PNG), table-driven. Pass the previous result to continue a
 * checksum over several pieces: `crc32(b, crc32(a))` equals `crc32(a ++ b)`.
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')) === 0xcbf43926
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const t = table();
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = t[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
