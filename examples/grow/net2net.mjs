// Net2Net on MNIST (Chen et al. 2016; the ordering of the keras Net2Net MNIST example): a
// trained teacher (784-64-32-10) is turned into a wider student (fc1 64 -> 128) and a deeper
// student (an extra 64-unit layer). Net2Net students start with the teacher's outputs; baselines
// trained identically: random padding (the new units' weights random, not function-preserving)
// and random initialisation (the student architecture from scratch).
// Writes bench/results/net2net-mnist.json.
//   node examples/grow/net2net.mjs [--epochs 3]
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { Model, lenet300100, fit, evaluate, adam, tf, saveToBuffer, loadFromBuffer } from '@rs/core';
import { maxAbsDiff } from '@rs/core/testing';
import { widen, deepen } from '@rs/grow';
import { selectBackend, releaseBackend, loadData } from '../prune/mnist.mjs';

const { values: args } = parseArgs({ options: { epochs: { type: 'string', default: '3' }, 'teacher-epochs': { type: 'string', default: '10' }, 'learning-rate': { type: 'string', default: '0.0005' }, backend: { type: 'string', default: 'wasm' } } });
const epochs = Number(args.epochs);
await selectBackend(args.backend);
const data = loadData();
const train = (model, seed) => fit(model, data.train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: Number(args['learning-rate']) }), epochs, batchSize: 128, seed });
const validation = (model) => evaluate(model, data.test);

const teacher = Model.create(lenet300100({ hidden: [64, 32] }), { seed: 0 });
await fit(teacher, data.train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 2e-3 }), epochs: Number(args['teacher-epochs']), batchSize: 128 });
const teacherScore = validation(teacher);
const teacherBytes = saveToBuffer(teacher);
const teacherOut = teacher.predict(data.test.x);
console.log(`teacher 784-64-32-10: validation loss ${teacherScore.loss.toFixed(4)}, accuracy ${(100 * teacherScore.accuracy).toFixed(2)}%`);

const rows = [];
async function run(name, kind, build) {
  const model = await build();
  const start = model.predict(data.test.x);
  const startDiff = maxAbsDiff(start, teacherOut);
  start.dispose();
  await train(model, 1);
  const score = validation(model);
  rows.push({ student: kind, method: name, startMaxDiffFromTeacher: startDiff, validationLoss: score.loss, accuracy: score.accuracy, params: model.counts().params });
  console.log(`${kind.padEnd(6)} ${name.padEnd(12)} start diff ${startDiff.toExponential(2)}  after ${epochs} epochs: validation loss ${score.loss.toFixed(4)}, accuracy ${(100 * score.accuracy).toFixed(2)}%`);
  model.dispose();
}

await run('net2net', 'wider', () => {
  const m = loadFromBuffer(teacherBytes);
  widen(m, 'fc1', 64, { seed: 1, split: 'random' });
  return m;
});
await run('random-pad', 'wider', () => {
  const m = loadFromBuffer(teacherBytes);
  m.edit((tx) => tx.insertUnits('fc1', 64, { incoming: 'init', outgoing: 'init' }), { technique: 'grow', reason: 'random padding baseline' });
  return m;
});
await run('random-init', 'wider', () => Model.create(lenet300100({ hidden: [128, 32] }), { seed: 7 }));
await run('net2net', 'deeper', () => {
  const m = loadFromBuffer(teacherBytes);
  deepen(m, 'relu1');
  return m;
});
await run('random-pad', 'deeper', () => {
  const m = loadFromBuffer(teacherBytes);
  m.edit((tx) => {
    tx.insertNode({ id: 'relu1.deep', op: 'dense', inputs: ['relu1'], attrs: { units: 64 } }, { after: 'relu1' });
    tx.insertNode({ id: 'relu1.deep.relu', op: 'relu', inputs: ['relu1.deep'], attrs: {} }, { after: 'relu1.deep' });
  }, { technique: 'grow', reason: 'random new layer baseline' });
  return m;
});
await run('random-init', 'deeper', () => {
  const graph = lenet300100({ hidden: [64, 32] });
  const m = Model.create(graph, { seed: 7 });
  m.edit((tx) => {
    tx.insertNode({ id: 'relu1.deep', op: 'dense', inputs: ['relu1'], attrs: { units: 64 } }, { after: 'relu1' });
    tx.insertNode({ id: 'relu1.deep.relu', op: 'relu', inputs: ['relu1.deep'], attrs: {} }, { after: 'relu1.deep' });
  });
  return m;
});
const ordered = ['wider', 'deeper'].map((kind) => {
  const [n2n, pad, init] = ['net2net', 'random-pad', 'random-init'].map((m) => rows.find((r) => r.student === kind && r.method === m).validationLoss);
  return { kind, net2netBest: n2n < pad && n2n < init };
});
console.log(ordered.map((o) => `${o.kind}: net2net has the lowest validation loss: ${o.net2netBest}`).join('\n'));
writeFileSync(new URL('../../bench/results/net2net-mnist.json', import.meta.url), JSON.stringify({ name: 'net2net-mnist', date: new Date().toISOString(), epochs, teacher: teacherScore, rows, ordered }, null, 2) + '\n');
tf.dispose(teacherOut);
releaseBackend();
