// Issue 17, defect 4: every public function of @rs/onnx that reads tensors leaves the live-tensor
// count unchanged when it throws, throws a typed error, and leaves the model as it was.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, tf, fit, adam, lenet300100, createOpRegistry, type GraphDef, type Tensor } from '@rs/core';
import { failureProblems } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { registerGlu } from '@rs/plugin-glu';
import { toOnnx, onnxSupport, createOnnxRules, OnnxRuleRegistry, type OnnxRule } from './index';
import { gluGraph } from './test-harness';

const registry = registerGlu(createOpRegistry());
const graph: GraphDef = gluGraph();

let model: Model;
let plain: Model;
let x: Tensor;
let y: Tensor;

beforeAll(async () => {
  await install();
  model = Model.create(graph, { seed: 1, registry });
  plain = Model.create(lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 }), { seed: 2 });
  x = tf.randomNormal([8, 6], 0, 1, 'float32', 2);
  y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');
  await fit(plain, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 1, batchSize: 8 });
});

afterAll(() => {
  model.dispose();
  plain.dispose();
  tf.dispose([x, y]);
});

const userError = new Error('rule failed');

const rulesWith = (rule: OnnxRule): OnnxRuleRegistry => createOnnxRules().register(rule as OnnxRule);

describe('toOnnx and onnxSupport', () => {
  it('bad options: typed error, no leak, model unchanged', async () => {
    expect(await failureProblems(
      [
        ['opset 16', () => toOnnx(plain, { opset: 16 }), 'INVALID_ARGUMENT'],
        ['opset 22', () => toOnnx(plain, { opset: 22 }), 'INVALID_ARGUMENT'],
        ['opset 17.5', () => toOnnx(plain, { opset: 17.5 }), 'INVALID_ARGUMENT'],
        ['opset NaN', () => toOnnx(plain, { opset: Number.NaN }), 'INVALID_ARGUMENT'],
        ['onnxSupport, opset 99', () => onnxSupport(plain, { opset: 99 }), 'INVALID_ARGUMENT'],
        ['batch 0', () => toOnnx(plain, { batch: 0 }), 'INVALID_ARGUMENT'],
        ['batch 1.5', () => toOnnx(plain, { batch: 1.5 }), 'INVALID_ARGUMENT'],
        ['batch "static"', () => toOnnx(plain, { batch: 'static' as never }), 'INVALID_ARGUMENT'],
        ['outputs empty', () => toOnnx(plain, { outputs: [] }), 'INVALID_ARGUMENT'],
        ['outputs names an unknown node', () => toOnnx(plain, { outputs: ['nope'] }), 'UNKNOWN_NODE'],
        ['outputs names the graph input', () => toOnnx(plain, { outputs: ['x'] }), 'INVALID_ARGUMENT'],
        ['outputs names a node twice', () => toOnnx(plain, { outputs: ['fc3', 'fc3'] }), 'INVALID_ARGUMENT'],
        ['registry not an OpRegistry', () => toOnnx(plain, { registry: {} as never }), 'INVALID_ARGUMENT'],
      ],
      { model: plain },
    )).toEqual([]);
  });

  it('unknown ops and failing rules: typed error (or the rule\'s own), no leak, model unchanged', async () => {
    const throwing: OnnxRule = { op: 'gatedLinear', emit: () => { throw userError; } };
    const checkThrows: OnnxRule = { op: 'gatedLinear', check: () => { throw userError; }, emit: () => 'never' };
    const badParam: OnnxRule = { op: 'gatedLinear', check: (info) => (info.paramValues('nope').length > 0 ? undefined : 'empty'), emit: () => 'never' };
    const badParamInEmit: OnnxRule = { op: 'gatedLinear', emit: (ctx) => ctx.param('nope') };
    expect(await failureProblems(
      [
        ['op without an ONNX rule', () => toOnnx(model), 'UNSUPPORTED_EXPORT'],
        ['op without a rule, only a later output needs it', () => toOnnx(model, { outputs: ['fc1', 'out'] }), 'UNSUPPORTED_EXPORT'],
        ['rule whose emit throws (after parameters were read)', () => toOnnx(model, { rules: rulesWith(throwing) }), userError],
        ['rule whose check throws', () => toOnnx(model, { rules: rulesWith(checkThrows) }), userError],
        ['onnxSupport, rule whose check throws', () => onnxSupport(model, { rules: rulesWith(checkThrows) }), userError],
        ['check reads an unknown parameter', () => toOnnx(model, { rules: rulesWith(badParam) }), 'UNKNOWN_PARAM'],
        ['onnxSupport, check reads an unknown parameter', () => onnxSupport(model, { rules: rulesWith(badParam) }), 'UNKNOWN_PARAM'],
        ['emit reads an unknown parameter', () => toOnnx(model, { rules: rulesWith(badParamInEmit) }), 'UNKNOWN_PARAM'],
      ],
      { model },
    )).toEqual([]);
    expect(() => createOnnxRules().register({ op: '', emit: () => 'x' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => createOnnxRules().register({ op: 'dense', emit: () => 'x' })).toThrow(expect.objectContaining({ code: 'DUPLICATE_OP' }));
  });
});
