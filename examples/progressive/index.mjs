// Progressive neural networks (Rusu et al. 2016) on split MNIST: five tasks of two digits, one
// column per task. Each new column reads every earlier column through non-linear lateral
// adapters; earlier columns are frozen, so their answers never change (backward transfer is
// exactly 0), while fine-tuning a single network across the same tasks forgets.
//   node examples/progressive/index.mjs [--backend wasm|cpu] [--epochs 2]
import { parseArgs } from 'node:util';
import { tf, lenet300100, adam, saveToBuffer, loadFromBuffer, useBackend, createOpRegistry } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { loadMnist, splitMnist } from '@rs/datasets';
import { ProgressiveNet, register, removeWeakLaterals, runSequence, continualMetrics } from '@rs/progressive';

const { values: args } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, epochs: { type: 'string', default: '2' } } });
await installCpu({ activate: false });
if (args.backend === 'wasm') await (await import('@rs/backend-wasm')).install();
else await useBackend(args.backend);
const epochs = Number(args.epochs);

const asTensors = (split) => ({ x: tf.tensor2d(split.x, [split.count, 784]), y: tf.tensor1d(split.y, 'int32') });
const tasks = splitMnist(loadMnist()).map((t) => ({ id: `${t.digits[0]}/${t.digits[1]}`, train: asTensors(t.train), test: asTensors(t.test) }));
const column = lenet300100({ hidden: [100, 100], classes: 2 });

// 1. Grow a network task by task.
const net = ProgressiveNet.create(column, { task: tasks[0].id, seed: 0 });
const matrix = tasks.map(() => tasks.map(() => null));
for (const [i, task] of tasks.entries()) {
  if (i > 0) net.addColumn(task.id); // one journaled edit: freeze, insert column + adapters, add a head
  await net.train(task.id, task.train, { epochs, batchSize: 64, optimizer: adam({ learningRate: 1e-3 }) });
  for (let j = 0; j <= i; j++) matrix[i][j] = net.evaluate(tasks[j].test, tasks[j].id);
  console.log(`after task ${task.id}: ${matrix[i].slice(0, i + 1).map((a, j) => `${tasks[j].id} ${(100 * a).toFixed(1)}%`).join('  ')}`);
}
const pnn = continualMetrics(matrix);
console.log(`progressive: ACC ${(100 * pnn.acc).toFixed(2)}%  BWT ${pnn.bwt}`);
for (const c of net.columnParams()) console.log(`  column ${c.index} (task ${c.task}): ${c.own} own parameters + ${c.adapters} in lateral adapters`);

// 2. The same tasks with one fine-tuned network: it forgets.
const ft = await runSequence('finetune', tasks, { graph: column, seed: 0, train: { epochs, batchSize: 64 } });
console.log(`fine-tuning: ACC ${(100 * ft.acc).toFixed(2)}%  BWT ${(100 * ft.bwt).toFixed(2)} points`);

// 3. Save and load: the task list comes back from the journal, outputs are identical.
const loaded = ProgressiveNet.fromModel(loadFromBuffer(saveToBuffer(net.model), { registry: register(createOpRegistry()) }));
const probe = tasks[4].test.x;
const same = loaded.tasks.every((task) => {
  const [a, b] = [net.predict(probe, task), loaded.predict(probe, task)];
  const equal = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) === 0;
  tf.dispose([a, b]);
  return equal;
});
console.log(`saved ${saveToBuffer(net.model).byteLength} bytes; loaded outputs identical for all ${loaded.tasks.length} tasks: ${same}`);

// 4. Compression: drop the weaker half of the last column's laterals (one journaled edit).
const last = tasks[4];
const before = net.evaluate(last.test, last.id);
const { removed, entry } = removeWeakLaterals(net, last.id, { fraction: 0.5 });
console.log(`removed ${removed.length} laterals of column 4: parameters ${entry.params.before} -> ${entry.params.after}; task ${last.id} accuracy ${(100 * before).toFixed(2)}% -> ${(100 * net.evaluate(last.test, last.id)).toFixed(2)}%`);

net.dispose();
loaded.dispose();
for (const t of tasks) tf.dispose([t.train.x, t.train.y, t.test.x, t.test.y]);
