// The PyTorch worker (bench/lib/torch-peer.py) as benchmarks talk to it: Debian's PyTorch in its
// tuned configuration (OpenMP OpenBLAS, glibc's malloc thresholds raised), one JSON command per
// line, timings taken inside the worker.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const PYTHON = '/usr/bin/python3';
export const peerEnv = (threads) => ({ LD_LIBRARY_PATH: '/usr/lib/x86_64-linux-gnu/openblas-openmp', MALLOC_MMAP_THRESHOLD_: '1000000000', MALLOC_TRIM_THRESHOLD_: '1000000000', OMP_NUM_THREADS: String(threads) });

/**
 * Starts the worker with `threads` threads, or exits the benchmark with the install command
 * when PyTorch is missing. Returns `ask(cmd)` (resolves with the reply, rejects on an error
 * reply), `block(what, extra)` (sets a workload up; returns a timer `(warmup, repeats) => ms[]`)
 * and `close()`.
 */
export function startTorchPeer(benchName, threads) {
  const env = { ...process.env, ...peerEnv(threads) };
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { env, encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    console.error(`${benchName}: the peer is missing (${PYTHON} cannot import torch and numpy${probe.stderr ? `: ${probe.stderr.trim().split('\n').pop()}` : ''}).
Install it with: apt-get install -y python3-torch python3-numpy libopenblas0 libopenblas0-openmp`);
    process.exit(1);
  }
  const peer = spawn(PYTHON, [join(dirname(fileURLToPath(import.meta.url)), 'torch-peer.py'), String(threads)], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: peer.stdout });
  const pending = [];
  answers.on('line', (line) => pending.shift()?.(JSON.parse(line)));
  const ask = (cmd) =>
    new Promise((resolve, reject) => {
      pending.push((reply) => (reply.ok ? resolve(reply) : reject(new Error(`PyTorch worker: ${reply.error}`))));
      peer.stdin.write(JSON.stringify(cmd) + '\n');
    });
  const block = async (what, extra) => {
    const key = `${what}:${JSON.stringify(extra)}`;
    await ask({ op: 'setup', key, what, ...extra });
    return (warmup, repeats) => ask({ op: 'time', key, warmup, repeats }).then((r) => r.ms);
  };
  return { ask, block, close: () => peer.stdin.end(), env: peerEnv(threads), python: PYTHON };
}
