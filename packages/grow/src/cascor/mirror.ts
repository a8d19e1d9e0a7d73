// The Model mirror of a cascade-correlation network: the IR graph grown by one journaled edit per unit.
import { Model, tf, type GraphDef, type Tensor } from '@rs/core';
import type { CascorUnit } from './types';

/**
 * Model weights for the paper's network. The Model carries t_k = tanh(s_k / 2) = 2 h_k, so a
 * hidden unit's dense computes s_k / 2 (inputs and bias halved, earlier hidden rows quartered)
 * and the output's dense reads hidden rows halved; sigmoid(s_o) = f(s_o) + 0.5.
 */
function denseKernel(nIn: number, rows: Float64Array[], hiddenScale: number, inputScale: number): { kernel: Tensor; bias: Tensor } {
  const fanIn = rows[0].length - 1;
  const units = rows.length;
  const kernel = new Float32Array(fanIn * units);
  const bias = new Float32Array(units);
  rows.forEach((w, u) => {
    bias[u] = w[0] * inputScale;
    for (let i = 0; i < fanIn; i++) kernel[i * units + u] = w[1 + i] * (i < nIn ? inputScale : hiddenScale);
  });
  return { kernel: tf.tensor2d(kernel, [fanIn, units]), bias: tf.tensor1d(bias) };
}

export function createModel(nIn: number, nOut: number, output: Float64Array[], seed: number): Model {
  const graph: GraphDef = {
    inputs: [{ id: 'x', shape: [null, nIn], dtype: 'float32' }],
    nodes: [
      { id: 'out', op: 'dense', inputs: ['x'], attrs: { units: nOut } },
      { id: 'prob', op: 'sigmoid', inputs: ['out'], attrs: {} },
    ],
    outputs: ['prob'],
  };
  const { kernel, bias } = denseKernel(nIn, output, 0.5, 1);
  try {
    return Model.create(graph, { seed, params: { 'out/kernel': kernel, 'out/bias': bias } });
  } finally {
    kernel.dispose();
    bias.dispose();
  }
}

/** One journaled edit: hidden unit k (dense + tanh, frozen) and the output re-read over cat{k+1}. */
export function installUnit(model: Model, nIn: number, hidden: Float64Array[], output: Float64Array[], unit: CascorUnit): void {
  const k = unit.index;
  const input = k === 0 ? 'x' : `cat${k}`;
  const h = denseKernel(nIn, [hidden[k]], 0.25, 0.5);
  const o = denseKernel(nIn, output, 0.5, 1);
  try {
    model.edit(
      (tx) => {
        tx.insertNode({ id: `h${k}.net`, op: 'dense', inputs: [input], attrs: { units: 1 } }, { params: { kernel: h.kernel, bias: h.bias } });
        tx.insertNode({ id: `h${k}`, op: 'tanh', inputs: [`h${k}.net`], attrs: {} });
        tx.insertNode({ id: `cat${k + 1}`, op: 'concat', inputs: ['x', ...Array.from({ length: k + 1 }, (_, j) => `h${j}`)], attrs: {} });
        tx.replaceNode('out', { op: 'dense', inputs: [`cat${k + 1}`], attrs: { units: output.length } }, { params: { kernel: o.kernel, bias: o.bias } });
        tx.setTrainable(`h${k}.net`, false);
      },
      {
        technique: 'grow',
        reason: `cascade-correlation: install unit ${k} (correlation ${unit.correlation.toFixed(4)} after ${unit.candidateEpochs} candidate epochs; outputs retrained ${unit.outputEpochs} epochs, ${unit.errors} training errors left)`,
        details: { ...unit },
      },
    );
  } finally {
    for (const t of [h.kernel, h.bias, o.kernel, o.bias]) t.dispose();
  }
}
