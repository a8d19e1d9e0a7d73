import { describe, it, expect, beforeAll } from 'vitest';
import { tf, type Model } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { pruneUnits } from '@rs/prune';
import { importOnnx, toOnnx } from './index';
import { compareArrays, fixture, onnxGraphProblems, RELATIVE } from './import-harness';
import { randomInput, runOrt } from './test-harness';

beforeAll(async () => {
  await install();
});

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/**
 * Parameters and FLOPs from the graph's shapes, by this test's own formulas for the ops these
 * models use (the conventions documented by each op's `flops`): the figures `model.counts()`
 * must report.
 */
function expectedCounts(model: Model): { params: number; flops: number } {
  let params = 0;
  let flops = 0;
  const info = model.validated.infos;
  for (const node of model.graph.nodes) {
    const out = info.get(node.id)!.shape as number[];
    const inp = info.get(node.inputs[0])!.shape as number[];
    const elements = product(out.slice(1));
    const bias = node.attrs.useBias !== false ? 1 : 0;
    switch (node.op) {
      case 'conv2d': {
        const [kh, kw] = node.attrs.kernelSize as number[];
        params += kh * kw * inp[3] * out[3] + bias * out[3];
        flops += elements * (2 * kh * kw * inp[3] + bias);
        break;
      }
      case 'onnx.depthwiseConv2d': {
        const [kh, kw] = node.attrs.kernelSize as number[];
        params += kh * kw * out[3] + bias * out[3];
        flops += elements * (2 * kh * kw + bias);
        break;
      }
      case 'dense':
        params += inp[1] * out[1] + bias * out[1];
        flops += 2 * inp[1] * out[1] + bias * out[1];
        break;
      case 'batchNorm':
        params += 2 * out[3];
        flops += 3 * elements;
        break;
      case 'relu':
        flops += elements;
        break;
      case 'onnx.clip':
        flops += 2 * elements;
        break;
      case 'add':
        flops += (node.inputs.length - 1) * elements;
        break;
      case 'avgPool2d':
      case 'maxPool2d':
        flops += elements * product(node.attrs.poolSize as number[]);
        break;
      case 'flatten':
      case 'onnx.pad2d':
        break;
      default:
        throw new Error(`no formula for ${node.op}`);
    }
  }
  return { params, flops };
}

/** Prunes half of every editable group (L1), exports, and compares with ONNX Runtime. */
async function pruneHalfAndExport(name: string) {
  const model = importOnnx(fixture(name));
  const before = model.counts();
  expect({ params: before.params, flops: before.flops }).toEqual(expectedCounts(model));
  const sizes = new Map(model.groups().filter((g) => !g.frozen).map((g) => [g.id, g.size]));
  const tensors = tf.memory().numTensors;
  pruneUnits(model, { fraction: 0.5, score: 'l1' });
  expect(tf.memory().numTensors).toBe(tensors);
  const after = model.counts();
  expect({ params: after.params, flops: after.flops }).toEqual(expectedCounts(model));
  const x = randomInput([2, 32, 32, 3], 11);
  const bytes = toOnnx(model);
  expect(onnxGraphProblems(bytes)).toEqual([]);
  const ort = await runOrt(bytes, { x });
  const ours = model.apply(x);
  const result = compareArrays(ours, Object.values(ort)[0]);
  tf.dispose([x, ours]);
  return { model, before, after, sizes, result };
}

describe('pruning imported PyTorch CNNs, then exporting them', () => {
  it('ResNet-20: half of every stage (coupled through the adds, shortcut convs and BatchNorms) and of every block', async () => {
    const { model, before, after, sizes, result } = await pruneHalfAndExport('resnet20.onnx');
    // The three residual stages are each one group, holding every conv that writes to the stream.
    const stages = model.groups().filter((g) => g.sources.length > 1);
    expect(stages.map((g) => g.size).sort((a, b) => a - b)).toEqual([8, 16, 32]);
    expect(stages.every((g) => sizes.get(g.id) === 2 * g.size)).toBe(true);
    expect(stages.find((g) => g.size === 8)!.params.some((p) => p.param.startsWith('bn/'))).toBe(true);
    for (const g of model.groups().filter((g) => !g.frozen)) expect(g.size * 2).toBe(sizes.get(g.id));
    expect(after.params).toBeLessThan(before.params * 0.3);
    expect(result.maxAbs).toBeGreaterThan(1e-3);
    expect(result.relative).toBeLessThanOrEqual(RELATIVE);
    model.dispose();
  });

  it('MobileNetV2 (width 0.35): inverted residuals coupled through their adds, depthwise convs pruned with their expansion', async () => {
    const { model, before, after, sizes, result } = await pruneHalfAndExport('mobilenetv2.onnx');
    const depthwise = model.graph.nodes.filter((n) => n.op === 'onnx.depthwiseConv2d');
    expect(depthwise.length).toBe(17);
    for (const g of model.groups().filter((g) => !g.frozen)) expect(g.size).toBe(Math.max(1, Math.ceil(sizes.get(g.id)! / 2)));
    expect(after.params).toBeLessThan(before.params);
    expect(after.flops).toBeLessThan(before.flops * 0.5);
    expect(result.maxAbs).toBeGreaterThan(1e-3);
    expect(result.relative).toBeLessThanOrEqual(RELATIVE);
    model.dispose();
  });
});
