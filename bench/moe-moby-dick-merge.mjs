// Merges per-seed moe-moby-dick results (one process per seed and variant set, run in parallel
// with the same settings) into one table: bench/results/<out>.json.
//   node bench/moe-moby-dick-merge.mjs <out> <result> [<result> ...]
// e.g. node bench/moe-moby-dick-merge.mjs moe-moby-dick-1500 moe-moby-dick-1500-s0 moe-moby-dick-1500-s1 ...
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResult } from './lib/results.mjs';

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) throw new Error('usage: node bench/moe-moby-dick-merge.mjs <out> <result> [<result> ...]');
const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
const files = inputs.map((name) => JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')));
const setups = new Set(files.map((f) => JSON.stringify(f.details.setup)));
if (setups.size !== 1) throw new Error(`the results were run with different settings: ${[...setups].join(' | ')}`);
const runs = files.flatMap((f) => f.details.runs);
const of = (variant) => runs.filter((r) => r.variant === variant).sort((a, b) => a.seed - b.seed);
const mean = (xs) => xs.reduce((s, v) => s + v, 0) / xs.length;
const dense = of('dense');
const sw = of('switch');
const seeds = dense.map((r) => r.seed).filter((s) => sw.some((r) => r.seed === s));
const loss = (list, seed) => list.find((r) => r.seed === seed).validationLoss;
const maxImbalance = (variant) => Math.max(...of(variant).flatMap((r) => Object.values(r.routing).map((x) => x.imbalance)));
const summary = {
  seeds: seeds.length,
  dense_val_loss: mean(seeds.map((s) => loss(dense, s))),
  switch_val_loss: mean(seeds.map((s) => loss(sw, s))),
  switch_wins: `${seeds.filter((s) => loss(sw, s) < loss(dense, s)).length}/${seeds.length}`,
  max_imbalance_balanced: maxImbalance('switch'),
};
if (of('switch_no_balance').length > 0) {
  summary.max_imbalance_no_balance = maxImbalance('switch_no_balance');
  summary.no_balance_val_loss = mean(of('switch_no_balance').map((r) => r.validationLoss));
}
writeResult(out, summary, { backend: files[0].details.backend, setup: files[0].details.setup, mergedFrom: inputs, runs });
