import { RsError } from '../errors';

/** One tensor of a safetensors file: raw little-endian data plus dtype and shape. */
export interface RawTensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsContent {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<RawTensor['dtype'], number> = { F32: 4, I32: 4 };

/**
 * Writes the safetensors layout: u64 little-endian header length, a JSON header (padded with
 * spaces to a multiple of 8), then the tensors' bytes back to back in header order.
 */
export function encodeSafetensors(content: SafetensorsContent): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: content.metadata };
  let offset = 0;
  for (const [name, t] of content.tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const padding = (8 - (headerBytes.byteLength % 8)) % 8;
  if (padding > 0) {
    json += ' '.repeat(padding);
    headerBytes = encoder.encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const t of content.tensors.values()) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

/** Reads the safetensors layout, checking every length and offset. */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContent & { dataStart: number } {
  if (bytes.byteLength < 8) {
    throw new RsError('IO_TRUNCATED', `The buffer has ${bytes.byteLength} bytes; a safetensors file starts with an 8-byte header length.`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > 100_000_000) throw new RsError('IO_CORRUPT', `The header length ${headerLength} is implausible; the file is not a safetensors file or is corrupt.`);
  if (8 + headerLength > bytes.byteLength) {
    throw new RsError('IO_TRUNCATED', `The header announces ${headerLength} bytes but only ${bytes.byteLength - 8} follow.`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch (error) {
    throw new RsError('IO_CORRUPT', `The safetensors header is not valid JSON (${(error as Error).message}).`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new RsError('IO_CORRUPT', 'The safetensors header is not a JSON object.');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadataRaw = header.__metadata__ ?? {};
  if (typeof metadataRaw !== 'object' || metadataRaw === null || Object.values(metadataRaw).some((v) => typeof v !== 'string')) {
    throw new RsError('IO_CORRUPT', 'The safetensors __metadata__ must map strings to strings.');
  }
  const tensors = new Map<string, RawTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32' && e.dtype !== 'I32') throw new RsError('IO_CORRUPT', `Tensor '${name}' has unsupported dtype ${JSON.stringify(e.dtype)} (F32 and I32 are supported).`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new RsError('IO_CORRUPT', `Tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}.`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      throw new RsError('IO_CORRUPT', `Tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}.`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) throw new RsError('IO_TRUNCATED', `Tensor '${name}' ends at byte ${end} of the data section, which has only ${dataLength} bytes.`);
    const elements = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (elements * BYTES[e.dtype] !== end - begin) {
      throw new RsError('IO_CORRUPT', `Tensor '${name}' has shape ${JSON.stringify(e.shape)} (${elements * BYTES[e.dtype]} bytes) but ${end - begin} bytes of data.`);
    }
    ranges.push([begin, end, name]);
    // Copy so that the typed arrays made from it are aligned and independent of the buffer.
    tensors.set(name, { dtype: e.dtype, shape: e.shape as number[], data: bytes.slice(dataStart + begin, dataStart + end) });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw new RsError('IO_CORRUPT', `Tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap in the data section.`);
  }
  return { tensors, metadata: metadataRaw as Record<string, string>, dataStart };
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3), to detect corrupt data. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
