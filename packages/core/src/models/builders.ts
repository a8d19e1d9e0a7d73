import type { GraphDef, NodeDef } from '../ir/types';

/**
 * LeNet-300-100 (LeCun et al. 1998): 784-300-100-10 with ReLU; 266,610 parameters.
 * Node ids: fc1, relu1, fc2, relu2, fc3 (logits).
 *
 * @example
 * const model = Model.create(lenet300100(), { seed: 0 });
 */
export function lenet300100(options: { inputs?: number; hidden?: [number, number]; classes?: number } = {}): GraphDef {
  const [h1, h2] = options.hidden ?? [300, 100];
  return {
    inputs: [{ id: 'x', shape: [null, options.inputs ?? 784], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: h1 } },
      { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: h2 } },
      { id: 'relu2', op: 'relu', inputs: ['fc2'], attrs: {} },
      { id: 'fc3', op: 'dense', inputs: ['relu2'], attrs: { units: options.classes ?? 10 } },
    ],
    outputs: ['fc3'],
  };
}

/**
 * A LeNet-5-style conv net for 28x28x1 digits: conv(6,5x5,same)-relu-maxpool-conv(16,5x5)-relu-
 * maxpool-flatten-dense(120)-relu-dense(84)-relu-dense(10). Node ids: conv1, pool1, conv2,
 * pool2, flatten, fc1, fc2, fc3.
 *
 * @example
 * const model = Model.create(lenet5(), { seed: 0 });
 */
export function lenet5(options: { filters?: [number, number]; hidden?: [number, number]; classes?: number } = {}): GraphDef {
  const [f1, f2] = options.filters ?? [6, 16];
  const [h1, h2] = options.hidden ?? [120, 84];
  return {
    inputs: [{ id: 'x', shape: [null, 28, 28, 1], dtype: 'float32' }],
    nodes: [
      { id: 'conv1', op: 'conv2d', inputs: ['x'], attrs: { filters: f1, kernelSize: 5, padding: 'same' } },
      { id: 'relu1', op: 'relu', inputs: ['conv1'], attrs: {} },
      { id: 'pool1', op: 'maxPool2d', inputs: ['relu1'], attrs: { poolSize: 2 } },
      { id: 'conv2', op: 'conv2d', inputs: ['pool1'], attrs: { filters: f2, kernelSize: 5 } },
      { id: 'relu2', op: 'relu', inputs: ['conv2'], attrs: {} },
      { id: 'pool2', op: 'maxPool2d', inputs: ['relu2'], attrs: { poolSize: 2 } },
      { id: 'flatten', op: 'flatten', inputs: ['pool2'], attrs: {} },
      { id: 'fc1', op: 'dense', inputs: ['flatten'], attrs: { units: h1 } },
      { id: 'relu3', op: 'relu', inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['relu3'], attrs: { units: h2 } },
      { id: 'relu4', op: 'relu', inputs: ['fc2'], attrs: {} },
      { id: 'fc3', op: 'dense', inputs: ['relu4'], attrs: { units: options.classes ?? 10 } },
    ],
    outputs: ['fc3'],
  };
}

export interface CharTransformerOptions {
  vocabSize: number;
  /** Context length (tokens). Default 64. */
  context?: number;
  /** Model width. Default 64. */
  dim?: number;
  heads?: number;
  layers?: number;
  /** FFN hidden width. Default 4 * dim. */
  ffn?: number;
}

/**
 * A small decoder-only character transformer (pre-norm): token embedding + learned position
 * embedding, then per block `x + attn(ln(x))` (causal) and `x + ffn(ln(x))`, a final layerNorm
 * and a dense head over the vocabulary. Input: int32 `[batch, context]` ids; output logits
 * `[batch, context, vocab]`. Node ids: `embed`, `block{i}.attn`, `block{i}.ffn1`, ...
 *
 * @example
 * const model = Model.create(charTransformer({ vocabSize: 80 }), { seed: 0 });
 */
export function charTransformer(options: CharTransformerOptions): GraphDef {
  const context = options.context ?? 64;
  const dim = options.dim ?? 64;
  const heads = options.heads ?? 4;
  const layers = options.layers ?? 2;
  const ffn = options.ffn ?? 4 * dim;
  const nodes: NodeDef[] = [
    { id: 'embed', op: 'embedding', inputs: ['tokens'], attrs: { vocabSize: options.vocabSize, dim } },
    { id: 'position', op: 'positionEmbedding', inputs: ['embed'], attrs: { maxLength: context } },
  ];
  let x = 'position';
  for (let i = 0; i < layers; i++) {
    const b = `block${i}`;
    nodes.push(
      { id: `${b}.ln1`, op: 'layerNorm', inputs: [x], attrs: {} },
      { id: `${b}.attn`, op: 'multiHeadAttention', inputs: [`${b}.ln1`], attrs: { numHeads: heads, headDim: dim / heads, causal: true } },
      { id: `${b}.res1`, op: 'add', inputs: [x, `${b}.attn`], attrs: {} },
      { id: `${b}.ln2`, op: 'layerNorm', inputs: [`${b}.res1`], attrs: {} },
      { id: `${b}.ffn1`, op: 'dense', inputs: [`${b}.ln2`], attrs: { units: ffn } },
      { id: `${b}.gelu`, op: 'gelu', inputs: [`${b}.ffn1`], attrs: {} },
      { id: `${b}.ffn2`, op: 'dense', inputs: [`${b}.gelu`], attrs: { units: dim } },
      { id: `${b}.res2`, op: 'add', inputs: [`${b}.res1`, `${b}.ffn2`], attrs: {} },
    );
    x = `${b}.res2`;
  }
  nodes.push({ id: 'ln_f', op: 'layerNorm', inputs: [x], attrs: {} }, { id: 'head', op: 'dense', inputs: ['ln_f'], attrs: { units: options.vocabSize } });
  return { inputs: [{ id: 'tokens', shape: [null, context], dtype: 'int32' }], nodes, outputs: ['head'] };
}
