// Architecture search with @rs/nas, in three parts:
// 1. NAS-Bench-201 (table lookup): regularized evolution, random search and REINFORCE, 100
//    evaluations each; search on validation accuracy, report test accuracy.
// 2. A search killed half-way and resumed from its checkpoint file.
// 3. Real training: random search on the MNIST MLP space, trials trained on 2 worker threads.
//
//   node examples/nas/index.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNasBench201 } from '@rs/datasets';
import { nb201Space, mnistMlpSpace, search, tableEvaluator } from '@rs/nas';
import { fileCheckpoint, workerPool } from '@rs/nas/node';

const { rows } = loadNasBench201();
const space = nb201Space();
const table = tableEvaluator(space, rows);

console.log('1. NAS-Bench-201, CIFAR-10, 100 evaluations, seed 0');
for (const strategy of ['evolution', 'random', 'reinforce']) {
  const result = await search({ space, strategy, evaluator: table, budget: { evaluations: 100 }, seed: 0 });
  console.log(`   ${strategy.padEnd(9)} validation ${result.best.validation.toFixed(2)}%  test ${result.best.test.toFixed(2)}%  ${result.best.encoded}`);
}

console.log('2. kill and resume');
const directory = mkdtempSync(join(tmpdir(), 'rs-nas-example-'));
const path = join(directory, 'search.json');
let calls = 0;
const dying = { evaluate: (arch, encoded) => (++calls > 50 ? Promise.reject(new Error('killed after 50 evaluations')) : table.evaluate(arch, encoded)) };
await search({ space, strategy: 'evolution', evaluator: dying, budget: { evaluations: 100 }, seed: 5, checkpoint: fileCheckpoint(path) }).catch((e) => console.log(`   ${e.message}`));
const resumed = await search({ space, strategy: 'evolution', evaluator: table, budget: { evaluations: 100 }, seed: 5, checkpoint: fileCheckpoint(path) });
const straight = await search({ space, strategy: 'evolution', evaluator: table, budget: { evaluations: 100 }, seed: 5 });
console.log(`   resumed: ${resumed.best.encoded} (${resumed.best.test}%), uninterrupted: ${straight.best.encoded} (${straight.best.test}%), same: ${resumed.best.encoded === straight.best.encoded}`);
rmSync(directory, { recursive: true, force: true });

console.log('3. MNIST MLP space, real training on 2 worker threads (wasm, 1 thread each), 8 trials');
const pool = await workerPool({ module: new URL('../../bench/lib/nas-mnist-evaluator.mjs', import.meta.url), workers: 2, options: { trainCount: 4000, epochs: 1 } });
try {
  const result = await search({
    space: mnistMlpSpace(),
    strategy: 'random',
    evaluator: pool,
    parallel: 2,
    budget: { evaluations: 8 },
    seed: 1,
    onTrial: (t) => console.log(`   ${t.encoded}: validation ${t.validation.toFixed(1)}%, ${t.cost.toFixed(1)} s`),
  });
  console.log(`   best: ${result.best.encoded}, validation ${result.best.validation.toFixed(1)}%, test ${result.best.test.toFixed(1)}%`);
} finally {
  await pool.close();
}
