// Shared by every benchmark: machine facts, timing, and the result file + one-line summary.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** The machine a number was measured on. */
export function machine() {
  const list = cpus();
  // The load average (1, 5, 15 minutes) when the result was written: other work on the machine skews timings.
  return { cpu: list[0]?.model ?? 'unknown', cores: list.length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}`, loadavg: loadavg().map((l) => Number(l.toFixed(2))) };
}

/** Median of `repeats` timed runs of `body` (ms), after `warmup` untimed runs. */
export async function timeIt(body, { warmup = 3, repeats = 10 } = {}) {
  for (let i = 0; i < warmup; i++) await body();
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await body();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], min: times[0], max: times[times.length - 1], samples: times };
}

/**
 * Writes bench/results/<name>.json ({ name, date, machine, summary, details }) and prints one
 * line: `<name>: key=value ...`.
 */
export function writeResult(name, summary, details = {}) {
  mkdirSync(resultsDir, { recursive: true });
  const record = { name, date: new Date().toISOString(), machine: machine(), summary, details };
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(record, null, 2) + '\n');
  const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
  console.log(`${name}: ${Object.entries(summary).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`);
  return record;
}
