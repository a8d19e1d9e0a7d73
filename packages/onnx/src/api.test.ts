import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, isRsError, lenet5, lenet300100, createOpRegistry, type RsError } from '@rs/core';
import { leakedTensors } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { gatedLinear, registerGlu } from '@rs/plugin-glu';
import { toOnnx, onnxSupport, createOnnxRules, registerOnnxRule, defaultOnnxRules, OnnxRuleRegistry, type OnnxRule } from './index';
import { onnx } from './proto';
import { compareWithOrt, gluGraph, randomInput, TOLERANCE } from './test-harness';

beforeAll(async () => {
  await install();
});

/** The exporter of the plugin op `gatedLinear`: `(x W + b) * sigmoid(x V + c)`, as @rs/plugin-glu documents it. */
const gatedLinearRule: OnnxRule<{ units: number }> = {
  op: 'gatedLinear',
  emit(ctx) {
    const [x] = ctx.inputNames;
    const value = ctx.op('Add', [ctx.op('MatMul', [x, ctx.param('w')]), ctx.param('b')]);
    const gate = ctx.op('Sigmoid', [ctx.op('Add', [ctx.op('MatMul', [x, ctx.param('v')]), ctx.param('c')])]);
    return ctx.op('Mul', [value, gate]);
  },
};


function catchRs(body: () => unknown): RsError {
  try {
    body();
  } catch (error) {
    if (isRsError(error)) return error;
    throw error;
  }
  throw new Error('expected an RsError');
}

describe('errors: UNSUPPORTED_EXPORT names the node, its op and why, before anything is built', () => {
  it('an op without a rule', () => {
    const model = Model.create(gluGraph(), { registry: registerGlu(createOpRegistry()), seed: 1 });
    const error = catchRs(() => toOnnx(model));
    expect(error.code).toBe('UNSUPPORTED_EXPORT');
    expect(error.message).toContain("node 'glu' (gatedLinear)");
    expect(error.message).toContain('registerOnnxRule');
    expect(error.details).toMatchObject({ node: 'glu', op: 'gatedLinear' });
    expect(onnxSupport(model)).toEqual({
      supported: false,
      problems: [{ node: 'glu', op: 'gatedLinear', reason: "no ONNX rule for op 'gatedLinear' (register one with registerOnnxRule)" }],
    });
    // Outputs that do not need the node export fine.
    expect(onnxSupport(model, { outputs: ['fc1'] }).supported).toBe(true);
    model.dispose();
  });

  it('a rule whose check refuses: nothing is emitted, every problem is listed', () => {
    let emitted = 0;
    const rules = createOnnxRules().register({ op: 'relu', check: () => 'refused for the test', emit: (ctx) => { emitted++; return ctx.op('Relu', ctx.inputNames); } }, { override: true });
    const model = Model.create(lenet300100(), { seed: 1 });
    const error = catchRs(() => toOnnx(model, { rules }));
    expect(error.code).toBe('UNSUPPORTED_EXPORT');
    expect((error.details.problems as unknown[]).length).toBe(2);
    expect(error.message).toContain("node 'relu1' (relu): refused for the test");
    expect(error.message).toContain("node 'relu2' (relu)");
    expect(emitted).toBe(0);
    model.dispose();
  });

  it('bad options are typed errors too', () => {
    const model = Model.create(lenet300100(), { seed: 1 });
    expect(catchRs(() => toOnnx(model, { opset: 13 })).code).toBe('INVALID_ARGUMENT');
    expect(catchRs(() => toOnnx(model, { batch: 0 })).code).toBe('INVALID_ARGUMENT');
    expect(catchRs(() => toOnnx(model, { outputs: ['nope'] })).code).toBe('UNKNOWN_NODE');
    expect(catchRs(() => toOnnx(model, { outputs: ['x'] })).code).toBe('INVALID_ARGUMENT');
    model.dispose();
  });
});

describe('the rule table', () => {
  it('has a rule for every built-in op of @rs/core', () => {
    for (const op of createOpRegistry().names()) expect(defaultOnnxRules.has(op), op).toBe(true);
  });

  it('a plugin registers its exporter (gatedLinear), which then round-trips within 1e-4', async () => {
    const rules = createOnnxRules().register(gatedLinearRule);
    const model = Model.create(gluGraph(), { registry: registerGlu(createOpRegistry()), seed: 1 });
    expect(onnxSupport(model, { rules }).supported).toBe(true);
    const x = randomInput([4, 6], 3);
    const result = await compareWithOrt(model, [x], { rules });
    expect(result.maxDiff).toBeLessThanOrEqual(TOLERANCE);
    expect(result.maxAbs).toBeGreaterThan(1e-3);
    x.dispose();
    model.dispose();
    expect(gatedLinear.name).toBe(gatedLinearRule.op);
  });

  it('registerOnnxRule adds to the default table; a duplicate is DUPLICATE_OP unless overriding is asked for', () => {
    const op = 'test.registerOnnxRule';
    registerOnnxRule({ op, emit: (ctx) => ctx.inputNames[0] });
    expect(defaultOnnxRules.has(op)).toBe(true);
    expect(catchRs(() => registerOnnxRule({ op, emit: (ctx) => ctx.inputNames[0] })).code).toBe('DUPLICATE_OP');
    const replacement: OnnxRule = { op, emit: (ctx) => ctx.op('Identity', ctx.inputNames) };
    registerOnnxRule(replacement, { override: true });
    expect(defaultOnnxRules.get(op)).toBe(replacement);
    expect(catchRs(() => new OnnxRuleRegistry().register({ op: '', emit: () => '' })).code).toBe('INVALID_ARGUMENT');
    expect(catchRs(() => createOnnxRules().register({ op: 'dense', emit: () => '' })).code).toBe('DUPLICATE_OP');
  });
});

describe('the ModelProto', () => {
  it('keeps the model names, dtypes and NHWC layout; batch is a named dimension or fixed', () => {
    const model = Model.create(lenet5(), { seed: 1 });
    const decoded = onnx.ModelProto.decode(toOnnx(model, { name: 'lenet5' }));
    expect(decoded.graph?.name).toBe('lenet5');
    expect(Number(decoded.opsetImport?.[0]?.version)).toBe(17);
    expect(decoded.producerName).toBe('@rs/onnx');
    const input = decoded.graph?.input?.[0];
    expect(input?.name).toBe('x');
    expect(input?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['batch', 28, 28, 1]);
    expect(decoded.graph?.output?.[0]?.name).toBe('fc3');
    const fixed = onnx.ModelProto.decode(toOnnx(model, { batch: 32 }));
    expect(fixed.graph?.output?.[0]?.type?.tensorType?.shape?.dim?.map((d) => Number(d.dimValue))).toEqual([32, 10]);
    // One transpose into NCHW per conv input and one back after pool2 (flatten reads NHWC).
    const transposes = decoded.graph?.node?.filter((n) => n.opType === 'Transpose').length;
    expect(transposes).toBeLessThanOrEqual(6);
    model.dispose();
  });

  it('export leaks no tensors', async () => {
    const model = Model.create(lenet5(), { seed: 1 });
    model.edit((tx) => {
      const mask = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([120], 0, 1, 'float32', 1), 0.5), 'float32'));
      const full = tf.tidy(() => tf.mul(tf.ones(model.param('fc1/kernel').value.shape), mask));
      tx.setMask('fc1/kernel', full);
      tf.dispose([mask, full]);
    });
    expect(await leakedTensors(() => toOnnx(model))).toBe(0);
    expect(await leakedTensors(() => onnxSupport(model))).toBe(0);
    model.dispose();
  });
});
