// Makes a small reorganized MNIST model for the browser example and its end-to-end test, in
// about 10 s: LeNet-300-100 trained briefly, half of its hidden units removed, 90% of the rest
// masked, an early exit after fc1 with a calibrated entropy threshold stored in the model.
// It is the main job (examples/main/index.mjs) with fewer epochs; `npm run main` makes the
// full-quality model (examples/out/lenet-pruned-exit.rsm), which the page loads just as well.
//
//   node examples/browser/scripts/make-model.mjs                # writes examples/browser/public/model.rsm
//   node examples/browser/scripts/make-model.mjs --out my.rsm   # elsewhere
//   node examples/browser/scripts/make-model.mjs --backend cpu  # default: wasm
import { Model, lenet300100, fit, evaluate, adam, tf, useBackend, saveToBuffer } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { loadMnist } from '@rs/datasets';
import { pruneWeights, pruneUnits } from '@rs/prune';
import { addExit, multiExitStep, calibrateThreshold, setExitPolicy } from '@rs/dynamic';

/**
 * Trains, prunes and adds a calibrated early exit; returns the saved model's bytes and what
 * was measured on the way. The caller has installed a backend (or passes `backend`).
 *
 * @param {{ epochs?: number, fineTuneEpochs?: number, exitEpochs?: number, seed?: number, log?: (line: string) => void }} options
 * @returns {Promise<{ buffer: ArrayBuffer, info: { denseAccuracy: number, prunedAccuracy: number, threshold: number, params: number, nonzeroParams: number, journal: number, seconds: number } }>}
 */
export async function makeModel(options = {}) {
  const { epochs = 2, fineTuneEpochs = 1, exitEpochs = 1, seed = 0, log = () => {} } = options;
  const started = Date.now();
  const mnist = loadMnist();
  const train = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
  const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
  const model = Model.create(lenet300100(), { seed });
  try {
    const batchSize = 128;
    await fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 2e-3 }), epochs, batchSize, seed });
    const denseAccuracy = evaluate(model, test).accuracy;
    log(`dense: ${(100 * denseAccuracy).toFixed(2)}% test accuracy after ${epochs} epoch(s)`);
    const fineTune = () => fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 1e-3 }), epochs: fineTuneEpochs, batchSize, seed });
    pruneUnits(model, { fraction: 0.5, score: 'l1', groups: ['fc1', 'fc2'], reason: 'browser example: half of the hidden units' });
    model.resetOptimizerState();
    await fineTune();
    pruneWeights(model, { sparsity: 0.9, sparsityPerParam: { 'fc3/kernel': 0.5 }, score: 'l1', scope: 'layer', reason: 'browser example: 90% of weights by magnitude' });
    model.resetOptimizerState();
    await fineTune();
    const prunedAccuracy = evaluate(model, test).accuracy;
    log(`pruned: ${(100 * prunedAccuracy).toFixed(2)}% test accuracy`);
    model.edit((tx) => { for (const node of ['fc1', 'fc2', 'fc3']) tx.setTrainable(node, false); }, { technique: 'dynamic', reason: 'browser example: freeze the trunk' });
    addExit(model, { at: 'relu1', classes: 10, reason: 'browser example: early exit after fc1' });
    const exitOptimizer = adam({ learningRate: 3e-3 });
    for (let epoch = 0; epoch < exitEpochs; epoch++) {
      for (let start = 0; start + batchSize <= 7000; start += batchSize) {
        const xb = tf.slice(train.x, start, batchSize);
        const yb = tf.slice(train.y, start, batchSize);
        multiExitStep(model, xb, yb, exitOptimizer, [1, 0]);
        tf.dispose([xb, yb]);
      }
    }
    // Calibrated on training digits the exit head did not see (7,000-7,999).
    const calX = tf.slice(train.x, 7000, 1000);
    const calibration = calibrateThreshold(model, calX, mnist.train.y.slice(7000, 8000), { rule: 'entropy', maxDrop: 0.005 });
    calX.dispose();
    setExitPolicy(model, { rule: 'entropy', thresholds: calibration.threshold }, 'browser example: calibrated entropy threshold');
    log(`early exit: entropy <= ${calibration.threshold.toPrecision(3)}`);
    const counts = model.counts();
    const buffer = saveToBuffer(model);
    return {
      buffer,
      info: {
        denseAccuracy,
        prunedAccuracy,
        threshold: calibration.threshold,
        params: counts.params,
        nonzeroParams: counts.nonzeroParams,
        journal: model.journal.length,
        seconds: (Date.now() - started) / 1000,
      },
    };
  } finally {
    model.dispose();
    tf.dispose([train.x, train.y, test.x, test.y]);
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${(await import('node:fs')).realpathSync(process.argv[1])}`).href;
if (isMain) {
  const { parseArgs } = await import('node:util');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { dirname, resolve } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const { values: args } = parseArgs({
    options: {
      out: { type: 'string', default: fileURLToPath(new URL('../public/model.rsm', import.meta.url)) },
      backend: { type: 'string', default: 'wasm' },
      epochs: { type: 'string', default: '2' },
      seed: { type: 'string', default: '0' },
    },
  });
  await installCpu({ activate: false });
  if (args.backend === 'wasm') await installWasm({ activate: false });
  await useBackend(args.backend);
  const { buffer, info } = await makeModel({ epochs: Number(args.epochs), seed: Number(args.seed), log: (line) => console.log(line) });
  const out = resolve(args.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, new Uint8Array(buffer));
  console.log(`${info.params.toLocaleString('en-US')} parameters, ${info.nonzeroParams.toLocaleString('en-US')} non-zero, ${info.journal} journal entries; ${(buffer.byteLength / 1024).toFixed(0)} KiB written to ${out} in ${info.seconds.toFixed(1)} s (backend ${tf.getBackend()})`);
}
