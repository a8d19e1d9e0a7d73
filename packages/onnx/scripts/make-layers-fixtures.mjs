// Makes the TensorFlow.js Layers fixtures of the import tests (packages/onnx/fixtures/import):
// models built and saved by @tensorflow/tfjs-layers 4.22 itself (model.json + weights.bin, the
// files `model.save('file://...')` writes). CI does not run this script; its outputs are committed.
//
//   node packages/onnx/scripts/make-layers-fixtures.mjs
//
// layers-mlp:  Sequential dense(64, relu) - dropout - dense(32, tanh) - dense(5, softmax)
// layers-cnn:  functional: conv-BN-ReLU, a residual add, depthwise + pointwise conv, a concat of
//              channels, max and average pooling, flatten and global average pooling concatenated,
//              dropout, dense softmax
// layers-text: functional: embedding(40, 16), layer norm, dense(16, relu) with a residual add,
//              flatten, dense(3)
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tf } from '@rs/core';
import { install } from '@rs/backend-cpu';
import * as layers from '@tensorflow/tfjs-layers';

await install();
const out = fileURLToPath(new URL('../fixtures/import/', import.meta.url));
let seed = 1;
const init = () => layers.initializers.glorotUniform({ seed: seed++ });
const L = layers.layers;

function mlp() {
  const model = layers.sequential({ name: 'mlp' });
  model.add(L.dense({ units: 64, activation: 'relu', inputShape: [20], kernelInitializer: init(), biasInitializer: 'randomNormal' }));
  model.add(L.dropout({ rate: 0.2 }));
  model.add(L.dense({ units: 32, activation: 'tanh', kernelInitializer: init(), biasInitializer: 'randomNormal' }));
  model.add(L.dense({ units: 5, activation: 'softmax', kernelInitializer: init() }));
  return model;
}

function cnn() {
  const x = layers.input({ shape: [16, 16, 3], name: 'image' });
  const c1 = L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: init(), name: 'c1' }).apply(x);
  const r1 = L.reLU({ name: 'r1' }).apply(L.batchNormalization({ name: 'bn1' }).apply(c1));
  const a = L.batchNormalization({ name: 'bn2' }).apply(L.conv2d({ filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(), name: 'c2' }).apply(r1));
  const s = L.activation({ activation: 'relu', name: 'r2' }).apply(L.add({ name: 'residual' }).apply([r1, a]));
  const d = L.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: init(), name: 'dw' }).apply(s);
  const p = L.conv2d({ filters: 8, kernelSize: 1, activation: 'relu', kernelInitializer: init(), name: 'pw' }).apply(d);
  const cat = L.concatenate({ name: 'cat' }).apply([s, p]);
  const m = L.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(cat);
  const av = L.averagePooling2d({ poolSize: 2, name: 'pool2' }).apply(m);
  const features = L.concatenate({ name: 'features' }).apply([L.flatten({ name: 'flat' }).apply(av), L.globalAveragePooling2d({ name: 'gap' }).apply(m)]);
  const y = L.dense({ units: 10, activation: 'softmax', kernelInitializer: init(), name: 'head' }).apply(L.dropout({ rate: 0.3, name: 'drop' }).apply(features));
  return layers.model({ inputs: x, outputs: y, name: 'cnn' });
}

function text() {
  const tokens = layers.input({ shape: [12], name: 'tokens', dtype: 'int32' });
  const e = L.embedding({ inputDim: 40, outputDim: 16, embeddingsInitializer: 'randomNormal', name: 'embed' }).apply(tokens);
  const n = L.layerNormalization({ name: 'ln', betaInitializer: 'randomNormal', gammaInitializer: 'randomUniform' }).apply(e);
  const h = L.dense({ units: 16, activation: 'relu', kernelInitializer: init(), name: 'ffn' }).apply(n);
  const r = L.add({ name: 'residual' }).apply([n, h]);
  const y = L.dense({ units: 3, kernelInitializer: init(), name: 'head' }).apply(L.flatten({ name: 'flat' }).apply(r));
  return layers.model({ inputs: tokens, outputs: y, name: 'text' });
}

async function save(model, name) {
  // Non-trivial BatchNorm statistics (a fresh layer has mean 0, variance 1).
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const c = layer.getWeights()[0].shape[0];
    layer.setWeights([tf.randomUniform([c], 0.5, 1.5, 'float32', seed++), tf.randomNormal([c], 0, 0.2, 'float32', seed++), tf.randomNormal([c], 0, 0.3, 'float32', seed++), tf.randomUniform([c], 0.5, 2, 'float32', seed++)]);
  }
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = Array.isArray(artifacts.weightData) ? Buffer.concat(artifacts.weightData.map((b) => Buffer.from(b))) : Buffer.from(artifacts.weightData);
    const json = { format: 'layers-model', generatedBy: `TensorFlow.js tfjs-layers v${layers.version_layers}`, convertedBy: null, modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: [`${name}.weights.bin`], weights: artifacts.weightSpecs }] };
    writeFileSync(`${out}${name}.json`, JSON.stringify(json));
    writeFileSync(`${out}${name}.weights.bin`, data);
    console.log(`${name}: ${model.countParams()} parameters, ${data.length} bytes of weights`);
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
}

await save(mlp(), 'layers-mlp');
await save(cnn(), 'layers-cnn');
await save(text(), 'layers-text');
