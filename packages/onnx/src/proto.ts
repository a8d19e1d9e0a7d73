import * as onnxProtoModule from 'onnx-proto';

/**
 * The static protobufjs code of onnx.proto (npm `onnx-proto`). It is a CommonJS module whose
 * `module.exports` is the protobuf root, so depending on the loader (Node ESM, a CJS build, a
 * bundler) the `onnx` namespace is a named export or a property of the default export.
 */
type OnnxNamespace = typeof onnxProtoModule.onnx;
const loaded = onnxProtoModule as unknown as { onnx?: OnnxNamespace; default?: { onnx?: OnnxNamespace } };
export const onnx: OnnxNamespace = (loaded.onnx ?? loaded.default?.onnx) as OnnxNamespace;

export type NodeProto = onnxProtoModule.onnx.INodeProto;
export type TensorProto = onnxProtoModule.onnx.ITensorProto;
export type AttributeProto = onnxProtoModule.onnx.IAttributeProto;
export type ValueInfoProto = onnxProtoModule.onnx.IValueInfoProto;

/** ONNX element types used by the exporter (values of `TensorProto.DataType`). */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;
/**
 * Element types of constants a rule can add.
 *
 * @example
 * ctx.constant([0, 1], [2], 'int64');
 */
export type OnnxDType = 'float32' | 'int32' | 'int64' | 'bool' | 'float64';

export function dataTypeOf(dtype: OnnxDType): number {
  switch (dtype) {
    case 'float32':
      return DataType.FLOAT;
    case 'int32':
      return DataType.INT32;
    case 'int64':
      return DataType.INT64;
    case 'bool':
      return DataType.BOOL;
    case 'float64':
      return DataType.DOUBLE;
  }
}

/**
 * An ONNX attribute value: integers become INT / INTS, other numbers FLOAT; `{ float }` forces
 * FLOAT, `{ floats }` FLOATS, `{ tensor }` a TENSOR attribute.
 *
 * @example
 * ctx.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: { float: 1e-5 } });
 */
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: TensorProto };

export function toAttribute(name: string, value: AttrValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.TENSOR, t: value.tensor };
}

/** Little-endian raw bytes of `values` in the ONNX element type `dtype` (the layout `raw_data` requires). */
export function rawBytes(values: ArrayLike<number> | ArrayLike<bigint>, dtype: OnnxDType): Uint8Array {
  const n = values.length;
  const width = dtype === 'int64' || dtype === 'float64' ? 8 : dtype === 'bool' ? 1 : 4;
  const bytes = new Uint8Array(n * width);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (dtype) {
      case 'float32':
        view.setFloat32(i * 4, Number(v), true);
        break;
      case 'int32':
        view.setInt32(i * 4, Number(v), true);
        break;
      case 'int64':
        view.setBigInt64(i * 8, typeof v === 'bigint' ? v : BigInt(v), true);
        break;
      case 'float64':
        view.setFloat64(i * 8, Number(v), true);
        break;
      case 'bool':
        view.setUint8(i, v ? 1 : 0);
        break;
    }
  }
  return bytes;
}

export function tensorProto(name: string, values: ArrayLike<number> | ArrayLike<bigint>, shape: readonly number[], dtype: OnnxDType): TensorProto {
  return { name, dims: [...shape], dataType: dataTypeOf(dtype), rawData: rawBytes(values, dtype) };
}
