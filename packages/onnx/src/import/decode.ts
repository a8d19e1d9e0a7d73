import { RsError } from '@rs/core';
import { onnx, type AttributeProto, type NodeProto, type TensorProto } from '../proto';

// Reading ONNX protobuf with the same static protobufjs code (`onnx-proto`) the exporter writes
// with: the model, its tensors (raw_data or the typed fields) and node attributes.

/** A tensor known at import time (an initializer, a Constant, or a folded shape computation). */
export interface Constant {
  dims: number[];
  /** Values as numbers (int64 ids and shape values fit exactly: they are far below 2^53). */
  data: Float32Array | Float64Array;
  /** 'float' for float16/32/64 element types, 'int' for integer and bool ones. */
  kind: 'float' | 'int';
}

type LongLike = number | { toNumber(): number } | string;

export function num(value: LongLike | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number(value);
  return value.toNumber();
}

const T = onnx.TensorProto.DataType;
const FLOATS = new Set<number>([T.FLOAT, T.DOUBLE]);
const INTS = new Set<number>([T.INT8, T.UINT8, T.INT16, T.UINT16, T.INT32, T.INT64, T.UINT32, T.UINT64, T.BOOL]);

export const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v as number, k]));

/** The values of `tensor`; refuses element types the import does not read (strings, float16...). */
export function readTensor(tensor: TensorProto, where: string): Constant {
  const dims = (tensor.dims ?? []).map(num);
  const size = dims.reduce((a, b) => a * b, 1);
  const type = tensor.dataType ?? 0;
  if (!FLOATS.has(type) && !INTS.has(type)) {
    throw new RsError('UNSUPPORTED_IMPORT', `${where}: tensor '${tensor.name ?? ''}' has element type ${TYPE_NAMES[type] ?? type}, which the import does not read.`, { tensor: tensor.name, dataType: type });
  }
  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new RsError('UNSUPPORTED_IMPORT', `${where}: tensor '${tensor.name ?? ''}' is stored in an external file; pass a model with its weights inside.`, { tensor: tensor.name });
  }
  const kind = FLOATS.has(type) ? 'float' : 'int';
  const data = kind === 'float' && type === T.FLOAT ? new Float32Array(size) : new Float64Array(size);
  const raw = tensor.rawData;
  if (raw && raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const width: Record<number, number> = { [T.FLOAT]: 4, [T.DOUBLE]: 8, [T.INT8]: 1, [T.UINT8]: 1, [T.BOOL]: 1, [T.INT16]: 2, [T.UINT16]: 2, [T.INT32]: 4, [T.UINT32]: 4, [T.INT64]: 8, [T.UINT64]: 8 };
    if (raw.length !== size * width[type]) {
      throw new RsError('IO_CORRUPT', `${where}: tensor '${tensor.name ?? ''}' has ${raw.length} bytes of data for dims [${dims}] (${size} values of ${width[type]} bytes).`, { tensor: tensor.name });
    }
    for (let i = 0; i < size; i++) {
      switch (type) {
        case T.FLOAT: data[i] = view.getFloat32(i * 4, true); break;
        case T.DOUBLE: data[i] = view.getFloat64(i * 8, true); break;
        case T.INT8: data[i] = view.getInt8(i); break;
        case T.UINT8: case T.BOOL: data[i] = view.getUint8(i); break;
        case T.INT16: data[i] = view.getInt16(i * 2, true); break;
        case T.UINT16: data[i] = view.getUint16(i * 2, true); break;
        case T.INT32: data[i] = view.getInt32(i * 4, true); break;
        case T.UINT32: data[i] = view.getUint32(i * 4, true); break;
        default: data[i] = Number(view.getBigInt64(i * 8, true));
      }
    }
    return { dims, data, kind };
  }
  const fields: ArrayLike<LongLike> =
    type === T.FLOAT ? tensor.floatData ?? [] : type === T.DOUBLE ? tensor.doubleData ?? [] : type === T.INT64 ? tensor.int64Data ?? [] : type === T.UINT32 || type === T.UINT64 ? tensor.uint64Data ?? [] : tensor.int32Data ?? [];
  if (fields.length !== size) {
    throw new RsError('IO_CORRUPT', `${where}: tensor '${tensor.name ?? ''}' has ${fields.length} values for dims [${dims}].`, { tensor: tensor.name });
  }
  for (let i = 0; i < size; i++) data[i] = num(fields[i]);
  return { dims, data, kind };
}

/** A node's attributes by name, in plain values (tensors as constants, graphs kept as protos). */
export type Attrs = Map<string, number | string | number[] | Constant | AttributeProto>;

export function readAttrs(node: NodeProto, where: string): Attrs {
  const A = onnx.AttributeProto.AttributeType;
  const attrs: Attrs = new Map();
  for (const a of node.attribute ?? []) {
    const name = a.name ?? '';
    switch (a.type) {
      case A.FLOAT: attrs.set(name, a.f ?? 0); break;
      case A.INT: attrs.set(name, num(a.i as LongLike)); break;
      case A.STRING: attrs.set(name, new TextDecoder().decode(a.s ?? new Uint8Array())); break;
      case A.FLOATS: attrs.set(name, [...(a.floats ?? [])]); break;
      case A.INTS: attrs.set(name, (a.ints ?? []).map((v) => num(v as LongLike))); break;
      case A.TENSOR: attrs.set(name, readTensor(a.t ?? {}, where)); break;
      default: attrs.set(name, a);
    }
  }
  return attrs;
}

/** Decodes a serialized ModelProto; refuses bytes that are not one. */
export function decodeModel(bytes: Uint8Array): ReturnType<typeof onnx.ModelProto.decode> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new RsError('INVALID_ARGUMENT', 'importOnnx needs the bytes of an ONNX model (a non-empty Uint8Array).');
  }
  let model;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new RsError('IO_CORRUPT', `These bytes are not an ONNX ModelProto: ${(error as Error).message}.`);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) throw new RsError('IO_CORRUPT', 'The ONNX model has no graph (or a graph without nodes).');
  return model;
}
