import { OnnxRuleRegistry, type OnnxRule } from './rule';
import { denseRule } from './rules/dense';
import { conv2dRule } from './rules/conv2d';
import { maxPool2dRule, avgPool2dRule } from './rules/pool2d';
import { reluRule, sigmoidRule, tanhRule, geluRule, softmaxRule, dropoutRule } from './rules/activations';
import { batchNormRule } from './rules/batch-norm';
import { layerNormRule } from './rules/layer-norm';
import { addRule, concatRule } from './rules/combine';
import { flattenRule, reshapeRule, sliceRule } from './rules/shape';
import { embeddingRule, positionEmbeddingRule } from './rules/embedding';
import { multiHeadAttentionRule } from './rules/multi-head-attention';

/** Rules for every built-in op of @rs/core. */
export const coreOnnxRules: readonly OnnxRule[] = [
  denseRule,
  conv2dRule,
  maxPool2dRule,
  avgPool2dRule,
  reluRule,
  sigmoidRule,
  tanhRule,
  geluRule,
  softmaxRule,
  dropoutRule,
  batchNormRule,
  layerNormRule,
  addRule,
  concatRule,
  flattenRule,
  reshapeRule,
  sliceRule,
  embeddingRule,
  positionEmbeddingRule,
  multiHeadAttentionRule,
];

/**
 * A rule table with the built-in rules (core's ops). Technique ops are not here: each technique
 * package provides its ops' lowerings through the op registry (`register(registry)`), and the
 * export looks those up first.
 *
 * @example
 * const rules = createOnnxRules().register(myRule);
 * const bytes = toOnnx(model, { rules });
 */
export function createOnnxRules(): OnnxRuleRegistry {
  const rules = new OnnxRuleRegistry();
  for (const rule of coreOnnxRules) rules.register(rule);
  return rules;
}

/**
 * The table `toOnnx` uses unless given another; {@link registerOnnxRule} adds to it.
 *
 * @example
 * defaultOnnxRules.has('dense'); // true
 * defaultOnnxRules.ops();        // every op kind with an exporter
 */
export const defaultOnnxRules: OnnxRuleRegistry = createOnnxRules();

/**
 * Registers an ONNX export rule for an op kind in the default table. A plugin should rather
 * provide its op's lowering next to the op (`registry.provide('onnx', op, rule)` in its
 * `register(registry)`), which travels with the registry its models use. A
 * second rule for the same op is an error (`DUPLICATE_OP`) unless `{ override: true }` is passed.
 *
 * @example
 * registerOnnxRule({
 *   op: 'gatedLinear',
 *   emit(ctx) {
 *     const [x] = ctx.inputNames;
 *     const value = ctx.op('Add', [ctx.op('MatMul', [x, ctx.param('w')]), ctx.param('b')]);
 *     const gate = ctx.op('Sigmoid', [ctx.op('Add', [ctx.op('MatMul', [x, ctx.param('v')]), ctx.param('c')])]);
 *     return ctx.op('Mul', [value, gate]);
 *   },
 * });
 */
export function registerOnnxRule(rule: OnnxRule, options: { override?: boolean } = {}): OnnxRuleRegistry {
  return defaultOnnxRules.register(rule, options);
}
