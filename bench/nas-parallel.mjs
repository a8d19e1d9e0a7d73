// nas-parallel: random search on the MNIST MLP space with real training evaluation (each trial
// trains one architecture for an epoch on 4,000 digits, single-threaded wasm, and scores it on
// 1,000 validation digits), on a pool of 1 worker thread and then of 2; the same seed gives the
// same architectures in both runs. The pair (1 worker, then 2) is repeated REPEATS times (default
// 3) so that drift in the machine's load hits both sides; summary.speedup = the median over the
// pairs of trials per second (2 workers) / (1 worker), and every pair is in the details.
//   pnpm bench nas-parallel [trials=24] [repeats=3]
import { search, mnistMlpSpace } from '@rs/nas';
import { workerPool } from '@rs/nas/node';
import { writeResult } from './lib/results.mjs';

const TRIALS = Number(process.argv[2] ?? 24);
const module = new URL('./lib/nas-mnist-evaluator.mjs', import.meta.url);
const space = mnistMlpSpace();

async function run(workers) {
  const pool = await workerPool({ module, workers, options: { trainCount: 4000, epochs: 1 } });
  try {
    // Warm-up: one trial per worker (wasm compilation, first-kernel costs), not timed.
    await search({ space, strategy: 'random', evaluator: pool, budget: { evaluations: workers }, seed: 999, parallel: workers });
    const started = performance.now();
    const result = await search({ space, strategy: 'random', evaluator: pool, budget: { evaluations: TRIALS }, seed: 1, parallel: workers });
    const seconds = (performance.now() - started) / 1000;
    return { workers, seconds, trialsPerSecond: TRIALS / seconds, best: result.best, trials: result.trials.map((t) => ({ arch: t.encoded, validation: t.validation, test: t.test, seconds: t.cost })) };
  } finally {
    await pool.close();
  }
}

const REPEATS = Number(process.argv[3] ?? 3);
const pairs = [];
for (let r = 0; r < REPEATS; r++) {
  const one = await run(1);
  const two = await run(2);
  pairs.push({ one, two, speedup: two.trialsPerSecond / one.trialsPerSecond });
  console.log(`pair ${r + 1}: ${one.trialsPerSecond.toFixed(2)} trials/s with 1 worker, ${two.trialsPerSecond.toFixed(2)} with 2: ${pairs.at(-1).speedup.toFixed(2)}x`);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mid = pairs.find((p) => p.speedup === median(pairs.map((q) => q.speedup)));
writeResult(
  'nas-parallel',
  { speedup: mid.speedup, trials_per_second_1: mid.one.trialsPerSecond, trials_per_second_2: mid.two.trialsPerSecond, trials: TRIALS, repeats: REPEATS, speedups: pairs.map((p) => Number(p.speedup.toFixed(3))) },
  { pairs, protocol: 'random search, seed 1, MNIST MLP space, each trial: Adam 1e-3, 1 epoch over 4,000 digits, batch 64, wasm threads 1 per worker; search with parallel = workers (lookahead = workers); validation on 1,000 held-out training digits, test on the 2,000 test digits' },
);
