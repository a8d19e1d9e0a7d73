/**
 * @rs/onnx: exports @rs/core models to ONNX (opset 17 by default), built with the static
 * protobuf code of the `onnx-proto` package. Rules are a table keyed by op kind; plugins add
 * theirs with `registerOnnxRule`.
 */
export { toOnnx, onnxSupport } from './export';
export type { OnnxExportOptions, OnnxProblem, OnnxSupport } from './export';
export { registerOnnxRule, createOnnxRules, defaultOnnxRules } from './builtin-rules';
export { OnnxRuleRegistry } from './rule';
export type { OnnxRule, OnnxCheckInfo, OnnxEmitContext, OnnxOpOptions } from './rule';
export type { AttrValue, OnnxDType } from './proto';
export { importOnnx, IMPORT_OPSETS } from './import/import';
export type { ImportOnnxOptions } from './import/import';
export type { ImportProblem } from './import/builder';
export { registerImportOps, pad2d, depthwiseConv2d, clip, reduceMean, geluErf } from './import/ops';
export type { Pad2dAttrs, DepthwiseConv2dAttrs, ClipAttrs, ReduceMeanAttrs } from './import/ops';
export { importLayersModel } from './import/layers-model';
export type { ImportLayersOptions, LayersModelJson } from './import/layers-model';
