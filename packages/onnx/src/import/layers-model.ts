import { RsError, createOpRegistry, validateGraph, type Model, type OpRegistry } from '@rs/core';
import { GraphBuilder, Unsupported, unsupported, type ImportProblem, type ParamValue } from './builder';
import { createImported, throwProblems } from './finish';
import { registerImportOps } from './ops';

// TensorFlow.js Layers models (model.json + weights, as `model.save` writes them) into the IR.
// Layers are channels-last like the IR, so tensors and kernels keep their layout.

/** Options of {@link importLayersModel}. */
export interface ImportLayersOptions {
  /** The registry of the returned model (default: a fresh one); the import ops are registered into it. */
  registry?: OpRegistry;
  /** Seed of the model's random generator (dropout in training). Default 0. */
  seed?: number;
}

interface LayerJson {
  class_name: string;
  name?: string;
  config: Record<string, any>;
  inbound_nodes?: [string, number, number, unknown][][];
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype?: string;
}

/** The parts of a `model.json` the import reads. */
export interface LayersModelJson {
  modelTopology: { class_name?: string; config?: any; model_config?: { class_name: string; config: any } };
  weightsManifest?: { paths: string[]; weights: WeightSpec[] }[];
  /** Instead of `weightsManifest` (tfjs' in-memory `ModelArtifacts`). */
  weightSpecs?: WeightSpec[];
}

const ACTIVATIONS: Record<string, { op: string; attrs?: Record<string, unknown> } | null> = {
  linear: null,
  relu: { op: 'relu' },
  sigmoid: { op: 'sigmoid' },
  tanh: { op: 'tanh' },
  softmax: { op: 'softmax', attrs: { axis: -1 } },
  relu6: { op: 'onnx.clip', attrs: { min: 0, max: 6 } },
};

function readWeights(json: LayersModelJson, weights: ArrayBuffer | Uint8Array | (ArrayBuffer | Uint8Array)[]): Map<string, ParamValue> {
  const specs = json.weightSpecs ?? (json.weightsManifest ?? []).flatMap((group) => group.weights);
  const parts = Array.isArray(weights) ? weights : [weights];
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    bytes.set(p instanceof Uint8Array ? p : new Uint8Array(p), offset);
    offset += p.byteLength;
  }
  const out = new Map<string, ParamValue>();
  offset = 0;
  for (const spec of specs) {
    if ((spec.dtype ?? 'float32') !== 'float32') throw new RsError('UNSUPPORTED_IMPORT', `Weight '${spec.name}' has dtype ${spec.dtype}; the import reads float32 weights (quantized models are not read).`, { weight: spec.name, problems: [] });
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > total) throw new RsError('IO_TRUNCATED', `The weights end at byte ${total}, before weight '${spec.name}' [${spec.shape}] (needs bytes up to ${offset + size * 4}).`, { weight: spec.name });
    out.set(spec.name, { data: new Float32Array(bytes.slice(offset, offset + size * 4).buffer), shape: spec.shape });
    offset += size * 4;
  }
  if (offset !== total) throw new RsError('IO_CORRUPT', `The weights hold ${total} bytes; the manifest describes ${offset}.`, { bytes: total, described: offset });
  return out;
}

function pair(value: unknown, fallback?: number[]): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value)) return [value[0], value[1]];
  if (fallback) return [fallback[0], fallback[1]];
  unsupported(`a window of ${JSON.stringify(value)}`);
}

/**
 * Reads a TensorFlow.js Layers model (Sequential or functional) into an @rs/core model: Dense,
 * Conv2D, DepthwiseConv2D, BatchNormalization, pooling, global pooling, Flatten, Dropout,
 * activations, Add, Concatenate, Embedding, LayerNormalization. `weights` is the weight data in
 * manifest order (the `.bin` file, or one buffer per manifest path). Throws UNSUPPORTED_IMPORT
 * listing every layer it cannot read, before any tensor is made.
 *
 * @example
 * const json = JSON.parse(readFileSync('model.json', 'utf8'));
 * const model = importLayersModel(json, readFileSync('model.weights.bin'));
 */
export function importLayersModel(modelJson: LayersModelJson | string, weights: ArrayBuffer | Uint8Array | (ArrayBuffer | Uint8Array)[], options: ImportLayersOptions = {}): Model {
  const json: LayersModelJson = typeof modelJson === 'string' ? JSON.parse(modelJson) : modelJson;
  const topology = json?.modelTopology?.model_config ?? json?.modelTopology;
  if (!topology || typeof topology.class_name !== 'string' || !Array.isArray(topology.config?.layers ?? topology.config)) {
    throw new RsError('INVALID_ARGUMENT', 'importLayersModel needs a model.json object with a modelTopology of a Sequential or functional model.');
  }
  const values = readWeights(json, weights);
  const sequential = topology.class_name === 'Sequential';
  const layers: LayerJson[] = Array.isArray(topology.config) ? topology.config : topology.config.layers;
  const builder = new GraphBuilder(new Set());
  const registry = registerImportOps(createOpRegistry());
  const problems: ImportProblem[] = [];
  const tensorOf = new Map<string, string>();
  const failed = new Set<string>();
  let previous: string | undefined;

  const shapeOf = (id: string) => {
    const graph = { inputs: builder.inputs, nodes: builder.nodes, outputs: [id] };
    return validateGraph(graph, registry).infos.get(id)?.shape ?? [];
  };
  const weight = (layer: string, name: string): ParamValue => {
    const key = [...values.keys()].find((k) => k === `${layer}/${name}` || k.endsWith(`/${layer}/${name}`));
    if (!key) unsupported(`weight '${layer}/${name}' is not in the weights manifest`);
    return values.get(key)!;
  };

  for (const [index, layer] of layers.entries()) {
    const config = layer.config ?? {};
    const name = String(layer.name ?? config.name ?? `layer${index}`);
    const kind = layer.class_name;
    try {
      let inputs: string[];
      if (sequential) {
        if (previous === undefined) {
          const shape = config.batch_input_shape ?? (config.input_shape ? [null, ...config.input_shape] : undefined);
          if (!shape) unsupported('the first layer of a Sequential model declares no input shape');
          previous = builder.input(`${name}_input`, [null, ...shape.slice(1)], config.dtype === 'int32' ? 'int32' : 'float32');
        }
        inputs = kind === 'InputLayer' ? [] : [previous];
      } else {
        const inbound = layer.inbound_nodes ?? [];
        if (inbound.length > 1) unsupported('a layer applied more than once (shared layers are not imported)');
        const sources = (inbound[0] ?? []).map(([source]) => source);
        if (sources.some((s) => failed.has(s))) {
          failed.add(name);
          continue;
        }
        inputs = sources.map((s) => tensorOf.get(s) ?? unsupported(`input layer '${s}' comes later (layers must be in topological order)`));
      }
      const add = (op: string, attrs: Record<string, unknown>, params: Record<string, ParamValue> = {}, from = inputs, suffix = '') => builder.add(builder.id(`${name}${suffix}`), op, from, attrs, params);
      const activate = (id: string): string => {
        const activation = String(config.activation ?? 'linear');
        if (!(activation in ACTIVATIONS)) unsupported(`activation '${activation}'`);
        const spec = ACTIVATIONS[activation];
        return spec ? add(spec.op, spec.attrs ?? {}, {}, [id], `.${activation}`) : id;
      };
      if (config.data_format && config.data_format !== 'channels_last') unsupported(`data_format ${config.data_format}`);
      if (config.dilation_rate && pair(config.dilation_rate).some((d) => d !== 1)) unsupported('dilated convolution');
      const bias = config.use_bias !== false;
      let out: string;
      switch (kind) {
        case 'InputLayer': {
          if (sequential) {
            out = previous as string;
            break;
          }
          const shape = config.batch_input_shape as (number | null)[];
          out = builder.input(name, [null, ...shape.slice(1)], config.dtype === 'int32' ? 'int32' : 'float32');
          break;
        }
        case 'Dense':
          out = activate(add('dense', { units: config.units, useBias: bias }, { kernel: weight(name, 'kernel'), ...(bias ? { bias: weight(name, 'bias') } : {}) }));
          break;
        case 'Conv2D': {
          const attrs = { filters: config.filters, kernelSize: pair(config.kernel_size), strides: pair(config.strides, [1, 1]), padding: config.padding, useBias: bias };
          out = activate(add('conv2d', attrs, { kernel: weight(name, 'kernel'), ...(bias ? { bias: weight(name, 'bias') } : {}) }));
          break;
        }
        case 'DepthwiseConv2D': {
          if ((config.depth_multiplier ?? 1) !== 1) unsupported(`depth_multiplier ${config.depth_multiplier}`);
          const attrs = { kernelSize: pair(config.kernel_size), strides: pair(config.strides, [1, 1]), padding: config.padding, useBias: bias };
          out = activate(add('onnx.depthwiseConv2d', attrs, { kernel: weight(name, 'depthwise_kernel'), ...(bias ? { bias: weight(name, 'bias') } : {}) }));
          break;
        }
        case 'BatchNormalization': {
          const rank = shapeOf(inputs[0]).length;
          const axis = Array.isArray(config.axis) ? config.axis[0] : config.axis ?? -1;
          if (axis !== -1 && axis !== rank - 1) unsupported(`BatchNormalization over axis ${axis}`);
          const mean = weight(name, 'moving_mean');
          const c = mean.shape[0];
          const gamma = config.scale !== false ? weight(name, 'gamma') : { data: new Float32Array(c).fill(1), shape: [c] };
          const beta = config.center !== false ? weight(name, 'beta') : { data: new Float32Array(c), shape: [c] };
          out = add('batchNorm', { epsilon: config.epsilon ?? 1e-3, momentum: config.momentum ?? 0.99 }, { gamma, beta, movingMean: mean, movingVariance: weight(name, 'moving_variance') });
          break;
        }
        case 'MaxPooling2D':
        case 'AveragePooling2D': {
          const window = pair(config.pool_size);
          out = add(kind === 'MaxPooling2D' ? 'maxPool2d' : 'avgPool2d', { poolSize: window, strides: pair(config.strides, window), padding: config.padding ?? 'valid' });
          break;
        }
        case 'GlobalAveragePooling2D':
        case 'GlobalMaxPooling2D': {
          const [, h, w] = shapeOf(inputs[0]) as number[];
          const pooled = add(kind === 'GlobalMaxPooling2D' ? 'maxPool2d' : 'avgPool2d', { poolSize: [h, w], strides: [h, w], padding: 'valid' }, {}, inputs, '.pool');
          out = add('flatten', {}, {}, [pooled]);
          break;
        }
        case 'Flatten':
          out = add('flatten', {});
          break;
        case 'Dropout':
          out = add('dropout', { rate: config.rate });
          break;
        case 'Activation':
          out = activate(inputs[0]);
          break;
        case 'ReLU':
          if (config.max_value !== null && config.max_value !== undefined) out = add('onnx.clip', { min: 0, max: config.max_value });
          else out = add('relu', {});
          break;
        case 'Softmax':
          out = add('softmax', { axis: -1 });
          break;
        case 'Add':
          out = add('add', {});
          break;
        case 'Concatenate': {
          const rank = shapeOf(inputs[0]).length;
          if (config.axis !== -1 && config.axis !== rank - 1) unsupported(`Concatenate on axis ${config.axis} (only the last)`);
          out = add('concat', { axis: -1 });
          break;
        }
        case 'Embedding':
          out = add('embedding', { vocabSize: config.input_dim, dim: config.output_dim }, { table: weight(name, 'embeddings') });
          break;
        case 'LayerNormalization': {
          const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
          const rank = shapeOf(inputs[0]).length;
          if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== rank - 1)) unsupported(`LayerNormalization over axes ${JSON.stringify(config.axis)}`);
          const d = shapeOf(inputs[0])[rank - 1] as number;
          const gamma = config.scale !== false ? weight(name, 'gamma') : { data: new Float32Array(d).fill(1), shape: [d] };
          const beta = config.center !== false ? weight(name, 'beta') : { data: new Float32Array(d), shape: [d] };
          out = add('layerNorm', { epsilon: config.epsilon ?? 1e-3 }, { gamma, beta });
          break;
        }
        default:
          unsupported(`layer class '${kind}' is not imported`);
      }
      tensorOf.set(name, out);
      previous = out;
    } catch (error) {
      if (!(error instanceof Unsupported)) throw error;
      problems.push({ node: name, opType: kind, opset: -1, domain: '', reason: error.message });
      failed.add(name);
    }
  }
  const outputs = sequential ? (previous && problems.length === 0 ? [previous] : []) : ((topology.config.output_layers ?? []) as [string][]).map(([n]) => tensorOf.get(n)).filter((id): id is string => id !== undefined);
  throwProblems('Layers model', problems);
  return createImported(builder, outputs, options);
}
