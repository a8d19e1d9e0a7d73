// Shared by this package's tests (excluded from the build): runs exported bytes in
// onnxruntime-node and compares every output with @rs/core's on the reference cpu backend.
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { tf, type GraphDef, type Model, type Tensor } from '@rs/core';
import { toOnnx, type OnnxExportOptions } from './index';

/** The acceptance bound of the issue: exported outputs within 1e-4 of @rs/core's. */
export const TOLERANCE = 1e-4;

export async function runOrt(bytes: Uint8Array, feeds: Record<string, Tensor>, outputs?: string[]): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await InferenceSession.create(bytes);
  try {
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      const data = t.dataSync();
      ortFeeds[name] = t.dtype === 'int32' ? new OrtTensor('int32', Int32Array.from(data), t.shape) : new OrtTensor('float32', Float32Array.from(data), t.shape);
    }
    const result = await session.run(ortFeeds, outputs ?? session.outputNames);
    const out: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const [name, value] of Object.entries(result)) out[name] = { data: Float32Array.from(value.data as Float32Array), dims: [...value.dims] };
    return out;
  } finally {
    await session.release();
  }
}

export interface Comparison {
  /** Largest |ours - ORT| over every exported output. */
  maxDiff: number;
  /** Largest |ours| (so a test can check the outputs are not trivially zero). */
  maxAbs: number;
  outputs: string[];
}

/**
 * Exports `model`, runs it in onnxruntime-node on `inputs`, and compares each output with
 * `model.run` on the current backend (the tests install the reference cpu backend).
 */
export async function compareWithOrt(model: Model, inputs: Tensor[], options: OnnxExportOptions = {}): Promise<Comparison> {
  const graph = model.graph;
  const outputIds = options.outputs ?? graph.outputs;
  const bytes = toOnnx(model, options);
  const feeds = Object.fromEntries(graph.inputs.map((input, i) => [input.id, inputs[i]]));
  const ort = await runOrt(bytes, feeds);
  const run = model.run(inputs);
  const byId = new Map<string, Tensor>();
  // model.run returns the graph's outputs; other requested outputs come from activation taps.
  graph.outputs.forEach((id, i) => byId.set(id, run.outputs[i]));
  let maxDiff = 0;
  let maxAbs = 0;
  const extra: Tensor[] = [];
  try {
    for (const id of outputIds) {
      let ours = byId.get(id);
      if (!ours) {
        const taps = model.run(inputs, { taps: { activations: [id] } });
        ours = taps.activations.get(id) as Tensor;
        extra.push(...taps.outputs, ...taps.activations.values());
      }
      const theirs = ort[id];
      if (!theirs) throw new Error(`ONNX Runtime returned no output '${id}'`);
      if (theirs.dims.join(',') !== ours.shape.join(',')) throw new Error(`output '${id}': ONNX shape [${theirs.dims}] vs ours [${ours.shape}]`);
      const data = ours.dataSync();
      for (let i = 0; i < data.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(data[i] - theirs.data[i]));
        maxAbs = Math.max(maxAbs, Math.abs(data[i]));
      }
      if (data.some((v) => !Number.isFinite(v))) throw new Error(`output '${id}' has non-finite values`);
    }
  } finally {
    tf.dispose([...run.outputs, ...run.losses.values(), ...run.metrics.values(), ...extra]);
  }
  return { maxDiff, maxAbs, outputs: outputIds };
}

/** A seeded uniform float tensor in [-scale, scale). */
export function randomInput(shape: number[], seed: number, scale = 1): Tensor {
  return tf.tidy(() => tf.mul(tf.sub(tf.mul(tf.randomUniform(shape, 0, 1, 'float32', seed), 2), 1), scale));
}

/** x [?, 6] -> dense 8 -> gatedLinear 5 (the plugin-glu op) -> dense 3: a model with a plugin op, for export tests. */
export function gluGraph(): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
      { id: 'glu', op: 'gatedLinear', inputs: ['fc1'], attrs: { units: 5 } },
      { id: 'out', op: 'dense', inputs: ['glu'], attrs: { units: 3 } },
    ],
    outputs: ['out'],
  };
}
