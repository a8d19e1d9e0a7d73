// The "full example" of the report: one small MNIST model that goes through every technique the
// report draws (element and unit pruning, Net2Net growth, sparse upcycling to a mixture of
// experts, an early exit with a calibrated policy) plus two real NAS-Bench-201 searches.
import { Model, adam, createOpRegistry, fit, tf, type GraphDef, type Tensor } from '@rs/core';
import { loadMnist, loadNasBench201 } from '@rs/datasets';
import { pruneUnits, pruneWeights } from '@rs/prune';
import { deepen, widen } from '@rs/grow';
import { registerMoe, upcycle } from '@rs/moe';
import { addExit, calibrateThreshold, multiExitStep, setExitPolicy, register as registerDynamic } from '@rs/dynamic';
import { nb201Space, search, tableEvaluator, type SearchResult } from '@rs/nas';

export function exampleGraph(): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 64 } },
      { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: 48 } },
      { id: 'relu2', op: 'relu', inputs: ['fc2'], attrs: {} },
      { id: 'block.ffn1', op: 'dense', inputs: ['relu2'], attrs: { units: 96 } },
      { id: 'block.act', op: 'relu', inputs: ['block.ffn1'], attrs: {} },
      { id: 'block.ffn2', op: 'dense', inputs: ['block.act'], attrs: { units: 48 } },
      { id: 'block.add', op: 'add', inputs: ['relu2', 'block.ffn2'], attrs: {} },
      { id: 'out', op: 'dense', inputs: ['block.add'], attrs: { units: 10 } },
    ],
    outputs: ['out'],
  };
}

export interface Example {
  model: Model;
  x: Tensor;
  y: Int32Array;
  searches: SearchResult[];
  dispose(): void;
}

/**
 * Builds, trains briefly (unless `train: false`: the tests that only check drawing skip it) and
 * reorganizes the example model (a few seconds on the CPU backend).
 */
export async function buildExample(options: { train?: boolean } = {}): Promise<Example> {
  const train = options.train ?? true;
  const mnist = loadMnist();
  const n = 1000;
  const xTrain = tf.tensor2d(mnist.train.x.subarray(0, n * 784), [n, 784]);
  const yTrain = tf.tensor1d(mnist.train.y.slice(0, n), 'int32');
  const xTest = tf.tensor2d(mnist.test.x.subarray(0, 400 * 784), [400, 784]);
  const yTest = mnist.test.y.slice(0, 400);
  const model = Model.create(exampleGraph(), { seed: 1, registry: registerDynamic(registerMoe(createOpRegistry())) });
  if (train) await fit(model, { x: xTrain, y: yTrain }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.003 }), epochs: 2, batchSize: 100, seed: 1 });
  pruneWeights(model, { sparsity: 0.6, scope: 'layer' });
  pruneUnits(model, { fraction: 0.25, groups: ['fc1'] });
  widen(model, 'fc2', 8, { seed: 2 });
  deepen(model, 'relu1');
  upcycle(model, { experts: 4, ffns: ['block.ffn1'], routing: 'switch', routerStd: 0.5, seed: 3 });
  addExit(model, { at: 'relu1', classes: 10 });
  const optimizer = adam({ learningRate: 0.002 });
  for (let step = 0; step < (train ? 24 : 0); step++) {
    const start = (step * 100) % (n - 100);
    const xb = tf.slice(xTrain, start, 100);
    const yb = tf.slice(yTrain, start, 100);
    multiExitStep(model, xb, yb, optimizer, [1, 1]);
    tf.dispose([xb, yb]);
  }
  const calibration = calibrateThreshold(model, xTest, yTest, { rule: 'entropy', maxDrop: 0.01 });
  setExitPolicy(model, { rule: 'entropy', thresholds: calibration.threshold }, 'calibrated: at most 1 point below the final exit');
  tf.dispose([xTrain, yTrain]);
  const space = nb201Space();
  const rows = loadNasBench201().rows;
  const searches = [
    await search({ space, strategy: 'evolution', evaluator: tableEvaluator(space, rows), budget: { evaluations: 80 }, seed: 1 }),
    await search({ space, strategy: 'random', evaluator: tableEvaluator(space, rows), budget: { evaluations: 80 }, seed: 1 }),
  ];
  return {
    model,
    x: xTest,
    y: yTest,
    searches,
    dispose() {
      model.dispose();
      xTest.dispose();
    },
  };
}
