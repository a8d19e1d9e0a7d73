// wasm-training-step: the LeNet-300-100 training step (batch 256 and 128, through @rs/core) on
// @rs/backend-wasm vs stock tfjs-backend-wasm. Each backend runs in its own child process of
// this one run (two wasm runtimes cannot share a process: their kernels bind module globals).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tf } from '@rs/core';
import { selectBackend } from './lib/backends.mjs';
import { batch, coreStep } from './lib/lenet-step.mjs';
import { timeIt, writeResult } from './lib/results.mjs';

// Batch 256 is the setting of the first reference measurement of this benchmark; batch
// 128 is engine-overhead's step. Both are measured; summary.speedup is at 256.
const BATCHES = [256, 128];

if (process.argv[2] === '--child') {
  const backendName = process.argv[3];
  await selectBackend(backendName);
  const out = {};
  for (const size of BATCHES) {
    const data = batch(size);
    const ours = coreStep(data);
    const timing = await timeIt(() => ours.step(), { warmup: 5, repeats: backendName === 'stock-wasm' ? 15 : 40 });
    out[size] = { medianMs: timing.median, minMs: timing.min, loss: ours.step() };
    ours.dispose();
  }
  console.log(JSON.stringify({ backend: backendName, ...out }));
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
    {
      speedup: stock[256].medianMs / ours[256].medianMs,
      stock_ms: stock[256].medianMs,
      ours_ms: ours[256].medianMs,
      speedup_batch128: stock[128].medianMs / ours[128].medianMs,
    },
    { batches: BATCHES, model: 'LeNet-300-100, Adam, through @rs/core', stock, ours, note: 'speedup = stock / ours (medians). Stock tfjs-backend-wasm in Node: single-threaded, transposed matmuls on the naive loop.' },
  );
}
