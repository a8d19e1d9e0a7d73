// Issue 19: every training step of @rs/dynamic runs through core's one gradient computation, so
// the auxiliary losses that ops report (a MoE layer's balance and z-losses) are part of the
// objective. The old executor of this package dropped them (`addLoss: () => undefined`).
import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, tf, sgd, softmaxCrossEntropy, charTransformer, computeGradients, disposeGradients, disposeRun, createRng, type GraphDef, type Tensor } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { registerMoe, moeGraph } from '@rs/moe';
import { gradientsOf } from '@rs/core/extend';
import { transformerBlocks, layerDropStep, layerDropObjective, skipAlias, addExit, multiExitStep, addSkipGate, gatedStep, Slimmable } from './index';

beforeAll(async () => {
  await install();
});

const registry = registerMoe(createOpRegistry());
const maxDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const relDiff = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/** A two-layer char transformer whose FFNs are Switch MoE layers (balance and z-losses on). */
function moeTransformer(seed: number): Model {
  const dense = charTransformer({ vocabSize: 12, context: 8, dim: 16, heads: 2, layers: 2, ffn: 16 });
  return Model.create(moeGraph(dense, { experts: 4, routing: 'switch', dropless: true }), { registry, seed });
}

function batch(): { x: Tensor; y: Tensor } {
  const ids = Int32Array.from({ length: 8 * 9 }, (_, i) => (i * 7 + (i >> 3)) % 12);
  return { x: tf.tensor2d(ids.slice(0, 64), [8, 8], 'int32'), y: tf.tensor2d(ids.slice(8, 72), [8, 8], 'int32') };
}

const ROUTER = ['block0.moe/router', 'block0.moe/routerBias', 'block1.moe/router', 'block1.moe/routerBias'];

describe('auxiliary losses in LayerDrop training', () => {
  it('a MoE transformer trained with LayerDrop keeps its balance and z-losses: the loss and the gradients of the router equal those of the same step without LayerDrop when no layer is dropped', () => {
    const model = moeTransformer(1);
    const { x, y } = batch();
    const blocks = transformerBlocks(model);
    expect(blocks).toHaveLength(2);

    // (b) The same batch through core's plain gradient computation (CE + balance + z).
    const reference = computeGradients(model, [x], y, softmaxCrossEntropy);
    expect(Object.keys(reference.losses).sort()).toEqual(['block0.moe/balance', 'block0.moe/z', 'block1.moe/balance', 'block1.moe/z']);
    expect(reference.losses['block0.moe/balance']).toBeGreaterThan(0);
    const ce = tf.tidy(() => softmaxCrossEntropy(model.apply(x, { training: true }), y).dataSync()[0]);
    const aux = Object.values(reference.losses).reduce((s, v) => s + v, 0);
    expect(relDiff(reference.loss, ce + aux)).toBeLessThan(1e-5);

    // (a1) The LayerDrop objective with every block kept, through core's gradientsOf: the same
    // loss, the same auxiliary losses and the same router gradients.
    const kept = gradientsOf(model, layerDropObjective(model, x, y, skipAlias(blocks, [0, 1])), { rng: createRng(3) });
    expect(relDiff(kept.loss, reference.loss)).toBeLessThan(1e-6);
    expect(kept.losses).toEqual(reference.losses);
    for (const k of ROUTER) expect(maxDiff(kept.grads.get(k) as Tensor, reference.grads.get(k) as Tensor), k).toBeLessThan(1e-6);
    disposeGradients(kept);

    // (a2) One LayerDrop step with p = 0 (no block dropped) and plain SGD with learning rate 1:
    // its loss is the reference loss and its update of the router is minus the reference gradient.
    const before = new Map(ROUTER.map((k) => [k, tf.clone(model.param(k).value)]));
    const step = layerDropStep(model, x, y, sgd({ learningRate: 1 }), { blocks, p: 0, rng: createRng(3) });
    expect(step.dropped).toEqual([]);
    expect(step.losses['block0.moe/balance']).toBeGreaterThan(0);
    expect(step.losses['block1.moe/balance']).toBeGreaterThan(0);
    expect(step.losses['block0.moe/z']).toBeGreaterThan(0);
    for (const [name, v] of Object.entries(reference.losses)) expect(relDiff(step.losses[name], v), name).toBeLessThan(1e-6);
    console.log(`layerDropStep loss ${step.loss}, reference ${reference.loss} (CE ${ce}, aux ${aux})`);
    expect(relDiff(step.loss, reference.loss)).toBeLessThan(1e-6);
    for (const k of ROUTER) {
      const g = reference.grads.get(k) as Tensor;
      const delta = tf.sub(before.get(k) as Tensor, model.param(k).value);
      const diff = maxDiff(delta, g);
      console.log(`${k}: max |update - gradient| = ${diff.toExponential(2)} (max |gradient| ${tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]).toExponential(2)})`);
      expect(diff, k).toBeLessThan(1e-6);
      delta.dispose();
    }
    disposeGradients(reference);
    tf.dispose([...before.values(), x, y]);
    model.dispose();
  });
});

/** x -> in -> r0 -> moe -> res1 = r0 + moe -> out: a residual block whose branch is a MoE layer. */
const mlp: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'in', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
    { id: 'r0', op: 'relu', inputs: ['in'], attrs: {} },
    { id: 'moe', op: 'moe', inputs: ['r0'], attrs: { experts: 3, hidden: 8, routing: 'switch', dropless: true } },
    { id: 'res1', op: 'add', inputs: ['r0', 'moe'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['res1'], attrs: { units: 3 } },
  ],
  outputs: ['out'],
};

describe('auxiliary losses in the other training steps', () => {
  it('multiExitStep, gatedStep and Slimmable.step report CE plus the MoE balance and z-losses', () => {
    const x = tf.randomNormal([12, 6], 0, 1, 'float32', 5);
    const y = tf.tensor1d(Array.from({ length: 12 }, (_, i) => i % 3), 'int32');
    /** Task loss (CE of `targets`, weights 1) and the auxiliary losses of one training-mode pass. */
    const parts = (model: Model, targets: string[]): { ce: number; aux: number } => {
      const run = model.run(x, { training: true, targets });
      const ce = tf.tidy(() => run.outputs.reduce((sum, o) => sum + softmaxCrossEntropy(o, y).dataSync()[0], 0));
      const aux = [...run.losses.values()].reduce((sum, l) => sum + l.dataSync()[0], 0);
      expect([...run.losses.keys()].sort()).toEqual(['moe/balance', 'moe/z']);
      disposeRun(run);
      return { ce, aux };
    };

    const exits = Model.create(mlp, { registry, seed: 1 });
    const exitId = addExit(exits, { at: 'r0', classes: 3 });
    const e = parts(exits, [exitId, 'out']);
    expect(e.aux).toBeGreaterThan(0);
    expect(relDiff(multiExitStep(exits, x, y, sgd(), [1, 1]), e.ce + e.aux)).toBeLessThan(1e-6);

    const gatedModel = Model.create(mlp, { registry, seed: 2 });
    const gate = addSkipGate(gatedModel, { input: 'r0', output: 'res1' }, { bias: 50 }); // every gate open
    const g = parts(gatedModel, ['out']);
    expect(relDiff(gatedStep(gatedModel, x, y, sgd(), [gate]), g.ce + g.aux)).toBeLessThan(1e-6);

    const slimModel = Model.create(mlp, { registry, seed: 3 });
    const slim = new Slimmable(slimModel, { widths: [1], groups: ['moe:experts'] });
    const w = parts(slimModel, ['out']);
    expect(relDiff(slim.step(x, y, sgd()), w.ce + w.aux)).toBeLessThan(1e-6);

    slim.dispose();
    for (const m of [exits, gatedModel, slimModel]) m.dispose();
    tf.dispose([x, y]);
  });
});
