// Issue 19: progressive columns train through core's one training step, so the auxiliary losses
// of the ops a column runs (a MoE layer's balance and z-losses) are part of the loss that
// trainPlan minimises and reports.
import { describe, it, expect, beforeAll } from 'vitest';
import { tf, sgd, softmaxCrossEntropy, computeGradients, disposeGradients, createOpRegistry, type GraphDef } from '@rs/core';
import { gradientsOf } from '@rs/core/extend';
import { install } from '@rs/backend-cpu';
import { registerMoe } from '@rs/moe';
import { ProgressiveNet, addColumn } from './index';

beforeAll(async () => {
  await install();
});

/** A column whose hidden layer is a Switch MoE (dropless: the batch order does not matter). */
const column: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
    { id: 'moe', op: 'moe', inputs: ['fc1'], attrs: { experts: 3, hidden: 8, routing: 'switch', dropless: true } },
    { id: 'relu', op: 'relu', inputs: ['moe'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['relu'], attrs: { units: 3 } },
  ],
  outputs: ['out'],
};

const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('auxiliary losses in progressive training', () => {
  it('a column containing a MoE layer keeps its balance and z-losses: the loss trainPlan reports is CE + balance + z of core computeGradients on the same batch', async () => {
    const net = ProgressiveNet.create(column, { task: 'a', seed: 1, registry: registerMoe(createOpRegistry()) });
    const x = tf.randomNormal([16, 6], 0, 1, 'float32', 2);
    const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3), 'int32');

    // Column 0: the network's only output, so computeGradients runs exactly that head.
    const reference = computeGradients(net.model, [x], y, softmaxCrossEntropy);
    expect(Object.keys(reference.losses).sort()).toEqual(['col0/moe/balance', 'col0/moe/z']);
    expect(reference.losses['col0/moe/balance']).toBeGreaterThan(0);
    const ce = tf.tidy(() => softmaxCrossEntropy(net.model.apply(x, { training: true }), y).dataSync()[0]);
    const aux = reference.losses['col0/moe/balance'] + reference.losses['col0/moe/z'];
    expect(relDiff(reference.loss, ce + aux)).toBeLessThan(1e-5);
    disposeGradients(reference);
    // One step on the whole batch (shuffled: every loss here is a mean over rows and tokens).
    const first = await net.train('a', { x, y }, { batchSize: 16, maxSteps: 1, optimizer: sgd() });
    console.log(`column 0: trainPlan loss ${first.losses[0]}, core ${reference.loss} = CE ${ce} + aux ${aux}`);
    expect(relDiff(first.losses[0], reference.loss)).toBeLessThan(1e-6);

    // Column 1 (column 0 frozen, laterals read it): its own MoE losses and those of the frozen
    // column it runs are in the loss, as core's gradient computation of that head reports them.
    addColumn(net, 'b');
    const head = net.model.graph.outputs[1];
    const second = gradientsOf(net.model, (pass) => softmaxCrossEntropy(pass.run(x, { targets: [head] })[0], y));
    expect(Object.keys(second.losses).sort()).toEqual(['col0/moe/balance', 'col0/moe/z', 'col1/moe/balance', 'col1/moe/z']);
    expect(second.losses['col1/moe/balance']).toBeGreaterThan(0);
    disposeGradients(second);
    const trained = await net.train('b', { x, y }, { batchSize: 16, maxSteps: 1, optimizer: sgd() });
    console.log(`column 1: trainPlan loss ${trained.losses[0]}, core ${second.loss}`);
    expect(relDiff(trained.losses[0], second.loss)).toBeLessThan(1e-6);

    tf.dispose([x, y]);
    net.dispose();
  });
});
