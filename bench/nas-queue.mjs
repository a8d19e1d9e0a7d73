// nas-queue: architecture search on a BullMQ/Redis job queue with worker processes (@rs/nas-queue).
// A private redis-server is started on a free port (scripts/ensure-redis.mjs) and stopped at the end.
// Three parts, settings in SETTINGS below (declared before the reported run):
//  1. same trajectory: regularized evolution on the NAS-Bench-201 table (population 10, sample 3),
//     seeds 0, 1, 2, 100 evaluations, parallel 4 + lookahead 4, each evaluation delayed 10 ms
//     plus 0-40 ms depending on the architecture (so results arrive out of proposal order);
//     run locally (search + tableEvaluator + the same delay) and on the queue with 4 worker
//     processes: summary.same_trajectory = every seed gives the same observed (architecture,
//     validation, test) sequence and the same best.
//  2. scaling: random search on the table with a 200 ms delay per trial, 1, 2, 4, 8 worker
//     processes, parallel = lookahead = workers, 16 trials per worker per run, 3 repeats (search
//     seeds 0, 1, 2), after an untimed warm-up round; throughput = trials / wall seconds;
//     efficiency_k = throughput_k / (k * throughput_1) (medians over repeats);
//     overhead_ms_per_trial = wall ms per trial with 1 worker - 200 ms (median over repeats).
//  3. ASHA vs random search on the MNIST MLP space (@rs/nas mnistMlpSpace, 5,184 architectures),
//     both on the queue with 2 worker processes (parallel 2, lookahead 2), search seeds 0, 1, 2;
//     each trial trains from scratch (Adam 1e-3, batch 64, init seed 0) on 3,000 training digits
//     and is scored by accuracy on 1,000 held-out training digits (validation), test accuracy on
//     the 2,000 test digits reported only. Random search: 10 architectures x 9 epochs = 90 epochs.
//     ASHA: rungs 1, 3, 9 epochs (reduction 3), budget.fidelity 82, so that its total epochs,
//     with the last proposal's overshoot, are at most 90. summary.asha_ge_rs_seeds = seeds on
//     which ASHA's best validation >= random search's.
//   pnpm bench nas-queue
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNasBench201 } from '@rs/datasets';
import { mnistMlpSpace, nb201Space, search, tableEvaluator } from '@rs/nas';
import { queueSearch } from '@rs/nas-queue';
import { startRedis } from '../scripts/ensure-redis.mjs';
import { writeResult } from './lib/results.mjs';
import { delay } from './lib/nb201-delay-evaluator.mjs';

const SETTINGS = {
  trajectory: { seeds: [0, 1, 2], evaluations: 100, parallel: 4, lookahead: 4, delayMs: 10, varyMs: 40, workers: 4, strategy: 'evolution', strategyOptions: { population: 10, sampleSize: 3 } },
  scaling: { workers: [1, 2, 4, 8], delayMs: 200, trialsPerWorker: 16, seeds: [0, 1, 2] },
  asha: { seeds: [0, 1, 2], workers: 2, trainCount: 3000, random: { evaluations: 10, epochs: 9 }, asha: { minFidelity: 1, maxFidelity: 9, reduction: 3, budget: 82 } },
};

const bin = fileURLToPath(new URL('../packages/nas-queue/dist/bin.js', import.meta.url));
const delayModule = fileURLToPath(new URL('./lib/nb201-delay-evaluator.mjs', import.meta.url));
const mnistModule = fileURLToPath(new URL('./lib/nas-mnist-evaluator.mjs', import.meta.url));
const redis = await startRedis();
const url = redis.url;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, min: Math.min(...xs), max: Math.max(...xs), std: Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length), values: xs };
};

async function startWorkers(count, queue, evaluator, module, options) {
  const workers = await Promise.all(
    Array.from({ length: count }, () => new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [bin, '--queue', url, '--queue-name', queue, '--evaluator', `${evaluator}=${module}`, '--options', JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.on('data', (d) => d.toString().includes('ready') && resolve(child));
      child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
    })),
  );
  return {
    stop: () => Promise.all(workers.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve() : (c.once('exit', resolve), c.kill('SIGTERM')))))),
  };
}

try {
  // 1. Same trajectory.
  const T = SETTINGS.trajectory;
  const nb201 = nb201Space();
  const rows = loadNasBench201().rows;
  const table = tableEvaluator(nb201, rows);
  const delayed = { evaluate: async (arch, encoded) => (await new Promise((r) => setTimeout(r, delay(T, encoded))), table.evaluate(arch, encoded)) };
  const trace = (trials) => trials.map((t) => `${t.encoded} ${t.validation} ${t.test}`);
  const trajectory = [];
  let pool = await startWorkers(T.workers, 'trajectory', 'nb201', delayModule, { delayMs: T.delayMs, varyMs: T.varyMs });
  for (const seed of T.seeds) {
    const common = { space: nb201, strategy: T.strategy, strategyOptions: T.strategyOptions, budget: { evaluations: T.evaluations }, seed, parallel: T.parallel, lookahead: T.lookahead };
    const local = await search({ ...common, evaluator: delayed });
    const queued = await queueSearch({ ...common, url, queue: 'trajectory', search: `trajectory-${seed}`, evaluator: 'nb201' });
    const same = JSON.stringify(trace(local.trials)) === JSON.stringify(trace(queued.trials)) && local.best.encoded === queued.best.encoded;
    const workersUsed = new Set(queued.records.map((r) => r.worker)).size;
    // Trials whose result arrived before that of an earlier trial (records are in trial order).
    const outOfOrder = queued.records.filter((r, i) => queued.records.slice(i + 1).some((later) => later.finishedAt < r.finishedAt)).length;
    trajectory.push({ seed, same, best: local.best, queueBest: queued.best, workersUsed, resultsArrivedOutOfOrder: outOfOrder });
    console.log(`trajectory seed ${seed}: same=${same}, best ${queued.best.validation} (${workersUsed} workers, ${outOfOrder} results arrived before an earlier trial's)`);
  }
  await pool.stop();

  // 2. Scaling.
  const S = SETTINGS.scaling;
  const scaling = [];
  for (const workers of S.workers) {
    pool = await startWorkers(workers, `scaling-${workers}`, 'nb201', delayModule, { delayMs: S.delayMs });
    const common = { space: nb201, strategy: 'random', url, queue: `scaling-${workers}`, evaluator: 'nb201', parallel: workers, lookahead: workers };
    await queueSearch({ ...common, search: `warmup-${workers}`, budget: { evaluations: workers }, seed: 999 });
    const runs = [];
    for (const seed of S.seeds) {
      const trials = S.trialsPerWorker * workers;
      const started = performance.now();
      await queueSearch({ ...common, search: `scaling-${workers}-${seed}`, budget: { evaluations: trials }, seed });
      const seconds = (performance.now() - started) / 1000;
      runs.push({ seed, trials, seconds, throughput: trials / seconds, msPerTrialPerWorker: (1000 * seconds * workers) / trials });
    }
    await pool.stop();
    scaling.push({ workers, runs, throughput: median(runs.map((r) => r.throughput)) });
    console.log(`scaling ${workers} workers: ${scaling.at(-1).throughput.toFixed(2)} trials/s (runs ${runs.map((r) => r.throughput.toFixed(2)).join(', ')})`);
  }
  const one = scaling[0].throughput;
  for (const s of scaling) s.efficiency = s.throughput / (s.workers * one);
  const overhead = median(scaling[0].runs.map((r) => r.msPerTrialPerWorker - S.delayMs));

  // 3. ASHA vs random search on MNIST, equal total epochs.
  const A = SETTINGS.asha;
  const mnist = mnistMlpSpace();
  pool = await startWorkers(A.workers, 'mnist', 'mnist', mnistModule, { trainCount: A.trainCount, epochs: A.random.epochs });
  const asha = [];
  for (const seed of A.seeds) {
    const common = { space: mnist, url, queue: 'mnist', evaluator: 'mnist', seed, parallel: A.workers, lookahead: A.workers };
    const started = performance.now();
    const rs = await queueSearch({ ...common, search: `rs-${seed}`, strategy: 'random', budget: { evaluations: A.random.evaluations } });
    const rsSeconds = (performance.now() - started) / 1000;
    const ashaStarted = performance.now();
    const { budget, ...strategyOptions } = A.asha;
    const as = await queueSearch({ ...common, search: `asha-${seed}`, strategy: 'asha', strategyOptions, budget: { fidelity: budget } });
    const ashaSeconds = (performance.now() - ashaStarted) / 1000;
    const epochs = (trials) => trials.reduce((sum, t) => sum + (t.fidelity ?? A.random.epochs), 0);
    const row = {
      seed,
      random: { bestValidation: rs.best.validation, bestTest: rs.best.test, best: rs.best.encoded, epochs: epochs(rs.trials), trials: rs.trials.length, seconds: rsSeconds },
      asha: { bestValidation: as.best.validation, bestTest: as.best.test, best: as.best.encoded, bestFidelity: as.best.fidelity, epochs: epochs(as.trials), trials: as.trials.length, perRung: [1, 3, 9].map((f) => as.trials.filter((t) => t.fidelity === f).length), seconds: ashaSeconds },
    };
    row.ashaGeRandom = row.asha.bestValidation >= row.random.bestValidation;
    asha.push(row);
    console.log(`asha seed ${seed}: ASHA ${row.asha.bestValidation.toFixed(2)} (${row.asha.epochs} epochs, rungs ${row.asha.perRung.join('/')}) vs random ${row.random.bestValidation.toFixed(2)} (${row.random.epochs} epochs)`);
  }
  await pool.stop();

  writeResult(
    'nas-queue',
    {
      same_trajectory: trajectory.every((t) => t.same),
      scaling_efficiency_2: scaling[1].efficiency,
      scaling_efficiency_4: scaling[2].efficiency,
      scaling_efficiency_8: scaling[3].efficiency,
      overhead_ms_per_trial: overhead,
      asha_ge_rs_seeds: asha.filter((r) => r.ashaGeRandom).length,
      asha_best_validation_mean: spread(asha.map((r) => r.asha.bestValidation)).mean,
      rs_best_validation_mean: spread(asha.map((r) => r.random.bestValidation)).mean,
    },
    {
      settings: SETTINGS,
      trajectory,
      scaling,
      asha: { perSeed: asha, ashaBestValidation: spread(asha.map((r) => r.asha.bestValidation)), randomBestValidation: spread(asha.map((r) => r.random.bestValidation)), ashaBestTest: spread(asha.map((r) => r.asha.bestTest)), randomBestTest: spread(asha.map((r) => r.random.bestTest)) },
      protocol: 'see the header of bench/nas-queue.mjs; queue = BullMQ 5 on a private redis-server (127.0.0.1), workers = rs-nas-worker processes on this machine',
    },
  );
} finally {
  await redis.stop();
}
