import { RsError, type Model, type OpRegistry } from '@rs/core';
import { GraphBuilder, Unsupported, type ImportProblem, type Value } from './builder';
import { decodeModel, num, readAttrs, readTensor } from './decode';
import { handlers } from './handlers';
import { attentionNode, findAttentionRegions, type AttentionRegion } from './attention';
import { findPatternRegions } from './patterns';
import { createImported, throwProblems } from './finish';

/** Options of {@link importOnnx}. */
export interface ImportOnnxOptions {
  /**
   * The registry of the returned model. Default: a fresh registry with core's ops; the import's
   * own ops (`onnx.pad2d`, `onnx.depthwiseConv2d`, `onnx.clip`) are registered into it either way.
   */
  registry?: OpRegistry;
  /** Fold each BatchNormalization into the convolution before it (default false: kept as batchNorm nodes). */
  fuseBatchNorm?: boolean;
  /** Seed of the model's random generator (dropout in training). Default 0. */
  seed?: number;
}

/** The opsets of the default ONNX domain the import is written for. */
export const IMPORT_OPSETS = { min: 7, max: 21 } as const;

const ELEMENT = { FLOAT: 1, INT32: 6, INT64: 7 } as const;

/**
 * Reads a serialized ONNX model (opsets 7 to 21 of the default domain; PyTorch's exporter writes
 * 13 to 17) into an @rs/core model: initializers become parameters, constant shape arithmetic is
 * evaluated, ops map to core's ops. NCHW images become NHWC tensors (see docs/import.md).
 * Throws UNSUPPORTED_IMPORT listing every node it cannot read (name, op type, opset), before any
 * tensor is made.
 *
 * @example
 * const model = importOnnx(readFileSync('resnet20.onnx'));
 * model.apply(tf.zeros([1, 32, 32, 3]));
 */
export function importOnnx(bytes: Uint8Array, options: ImportOnnxOptions = {}): Model {
  const proto = decodeModel(bytes);
  const graph = proto.graph!;
  const opsets = new Map<string, number>();
  for (const o of proto.opsetImport ?? []) opsets.set(o.domain === 'ai.onnx' ? '' : o.domain ?? '', num(o.version as never));
  const opset = opsets.get('') ?? 1;
  const problems: ImportProblem[] = [];
  const outputs = (graph.output ?? []).map((o) => o.name ?? '');
  const builder = new GraphBuilder(new Set(outputs));
  const values = new Map<string, Value>();
  const where = 'importOnnx';
  for (const init of graph.initializer ?? []) values.set(init.name ?? '', { kind: 'const', c: readTensor(init, where) });
  const uses = new Map<string, number>();
  for (const node of graph.node ?? []) for (const input of node.input ?? []) if (input) uses.set(input, (uses.get(input) ?? 0) + 1);
  for (const name of outputs) uses.set(name, (uses.get(name) ?? 0) + 1);

  for (const input of graph.input ?? []) {
    const name = input.name ?? '';
    if (values.has(name)) continue;
    const tensor = input.type?.tensorType;
    const dims = (tensor?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue as never) > 0 ? num(d.dimValue as never) : null));
    const element = tensor?.elemType ?? 0;
    const dtype = element === ELEMENT.FLOAT ? 'float32' : element === ELEMENT.INT64 || element === ELEMENT.INT32 ? 'int32' : undefined;
    if (!dtype || dims.length === 0) {
      problems.push({ node: name, opType: 'graph input', opset, domain: '', reason: `input of element type ${element} and rank ${dims.length} (float32 or integer ids of rank >= 1 are imported)` });
      continue;
    }
    const image = dtype === 'float32' && dims.length === 4;
    const irShape = image ? [null, dims[2], dims[3], dims[1]] : [null, ...dims.slice(1)];
    const id = builder.input(name, irShape, dtype);
    values.set(name, { kind: 'ir', id, layout: { kind: image ? 'nchw' : 'plain' }, dims: [null, ...dims.slice(1)], dtype, single: (uses.get(name) ?? 0) === 1 });
  }

  const poisoned = new Set<string>();
  const nodes = graph.node ?? [];
  // Known before any node runs: initializers, Constants and Identities of them (the exporter shares equal weights that way).
  const constants = new Set([...values].filter(([, v]) => v.kind === 'const').map(([k]) => k));
  for (const n of nodes) if (n.opType === 'Constant' || (n.opType === 'Identity' && constants.has(n.input?.[0] ?? ''))) constants.add(n.output?.[0] ?? '');
  const isConstant = (name: string) => constants.has(name);
  const regions = [...findAttentionRegions(nodes, isConstant, new Set(outputs)), ...findPatternRegions(nodes, values, new Set(outputs))];
  const regionOf = new Map<number, AttentionRegion>();
  for (const region of regions) for (const i of region.members) regionOf.set(i, region);
  const constantOf = (name: string) => {
    const v = values.get(name);
    return v?.kind === 'const' ? v.c : undefined;
  };
  for (const [index, node] of nodes.entries()) {
    const opType = node.opType ?? '';
    const domain = node.domain === 'ai.onnx' ? '' : node.domain ?? '';
    const name = node.name || node.output?.[0] || `node ${index}`;
    const nodeOutputs = (node.output ?? []).filter((o) => o);
    const region = regionOf.get(index);
    const fail = (reason: string) => {
      if (region) problems.push({ node: region.scope, opType: region.opType ?? 'MultiheadAttention (PyTorch export)', opset, domain: '', reason });
      else problems.push({ node: name, opType, opset: opsets.get(domain) ?? opset, domain, reason });
      for (const o of region ? [region.output] : nodeOutputs) poisoned.add(o);
    };
    if (region && index !== region.last) continue;
    const handler = region
      ? () => (region.convert ? region.convert(context(), values.get(region.input)) : attentionNode(context(), region, nodes, constantOf, values.get(region.input)))
      : domain === '' ? handlers[opType] : undefined;
    if (!handler) {
      fail(domain === '' ? `no import for op '${opType}'` : `op '${opType}' of domain '${domain}' is not imported`);
      continue;
    }
    const inputNames = region ? [region.input] : node.input ?? [];
    const outputNames = region ? [region.output] : nodeOutputs;
    if (inputNames.some((i) => poisoned.has(i))) {
      for (const o of outputNames) poisoned.add(o);
      continue;
    }
    if (region?.problem) {
      fail(region.problem);
      continue;
    }
    const missing = inputNames.find((i) => i && !values.has(i));
    if (missing !== undefined) {
      fail(`input '${missing}' is not defined before this node`);
      continue;
    }
    const context = () => ({
          name,
          opType,
          opset,
          attrs: readAttrs(node, `${where}: node '${name}'`),
          inputs: inputNames.map((i) => (i ? values.get(i) : undefined)),
          uses: outputNames.map((o) => uses.get(o) ?? 0),
          output: outputNames[0] ?? '',
          weightNames: inputNames.map((i) => i || undefined),
          outputsUsedBeyondFirst: nodeOutputs.slice(1).some((o) => (uses.get(o) ?? 0) > 0),
          builder,
        });
    try {
      const out = handler(context(), { fuseBatchNorm: options.fuseBatchNorm === true });
      values.set(outputNames[0], out);
    } catch (error) {
      if (!(error instanceof Unsupported)) throw error;
      fail(error.message);
    }
  }

  const outputIds: string[] = [];
  for (const name of outputs) {
    const v = values.get(name);
    if (poisoned.has(name)) continue;
    if (!v || v.kind !== 'ir') problems.push({ node: name, opType: 'graph output', opset, domain: '', reason: v ? 'the output is a constant' : 'the output is not computed by any node' });
    else if (v.layout.kind === 'flat') problems.push({ node: name, opType: 'graph output', opset, domain: '', reason: 'the output is a flattened NCHW image, whose feature order differs in the IR' });
    else outputIds.push(v.id);
  }
  throwProblems('ONNX model', problems);
  if (opset < IMPORT_OPSETS.min || opset > IMPORT_OPSETS.max) {
    throw new RsError('UNSUPPORTED_IMPORT', `The model uses opset ${opset} of the default ONNX domain; the import reads opsets ${IMPORT_OPSETS.min} to ${IMPORT_OPSETS.max}.`, { opset, problems: [] });
  }

  return createImported(builder, outputIds, options);
}
