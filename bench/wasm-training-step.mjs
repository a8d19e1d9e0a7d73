// wasm-training-step: the LeNet-300-100 training step (batch 128, through @rs/core) on
// @rs/backend-wasm vs stock tfjs-backend-wasm. Each backend runs in its own child process of
// this one run (two wasm runtimes cannot share a process: their kernels bind module globals).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tf } from '@rs/core';
import { selectBackend } from './lib/backends.mjs';
import { batch, coreStep } from './lib/lenet-step.mjs';
import { timeIt, writeResult } from './lib/results.mjs';

const BATCH = Number(process.env.BATCH ?? 128);

if (process.argv[2] === '--child') {
  const backendName = process.argv[3];
  await selectBackend(backendName);
  const data = batch(BATCH);
  const ours = coreStep(data);
  const timing = await timeIt(() => ours.step(), { warmup: 5, repeats: backendName === 'stock-wasm' ? 15 : 40 });
  const loss = ours.step();
  console.log(JSON.stringify({ backend: backendName, medianMs: timing.median, minMs: timing.min, loss }));
} else {
  const run = (backendName) => {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', backendName], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(child.stderr);
    return JSON.parse(child.stdout.trim().split('\n').pop());
  };
  const stock = run('stock-wasm');
  const ours = run('wasm');
  writeResult(
    'wasm-training-step',
    { speedup: stock.medianMs / ours.medianMs, stock_ms: stock.medianMs, ours_ms: ours.medianMs },
    { batch: BATCH, model: 'LeNet-300-100, Adam, through @rs/core', stock, ours, note: 'speedup = stock / ours (medians). Stock tfjs-backend-wasm in Node: single-threaded, transposed matmuls on the naive loop.' },
  );
}
