import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { tf, type Model, type Tensor } from '@rs/core';
import { earlyExitPredict, exitPolicy } from '@rs/dynamic';
import { loadMnist, MNIST_PIXELS } from '@rs/datasets';
import { common, type Runner } from '../command';
import { CliError, usage } from '../errors';
import { int } from '../format';
import type { Context } from '../io';
import { choice, number } from '../options';
import { createProgress } from '../progress';
import { BACKENDS, loadModel, setupBackend, type BackendName } from '../runtime';
import { inputShapeOf } from '../data';

/** The repository's bench/run.mjs above `cwd`, if any. */
function findRepoBench(cwd: string): string | undefined {
  let dir = cwd;
  for (;;) {
    const candidate = join(dir, 'bench', 'run.mjs');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Runs `node bench/run.mjs <name> ...` with its output streamed through the CLI's streams. */
function runRepoBench(context: Context, script: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: dirname(dirname(script)), stdio: ['ignore', 'pipe', 'pipe'] });
    // With --json the benchmark's own output is progress: it goes to stderr.
    child.stdout.on('data', (chunk: Buffer) => (context.json ? context.io.stderr : context.io.stdout).write(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => context.io.stderr.write(chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** Input rows for a model: real MNIST test digits when the input is a digit, else seeded uniform values. */
function benchInput(model: Model, batch: number): { x: Tensor; source: string } {
  const shape = inputShapeOf(model);
  const sample = shape.slice(1) as number[];
  const size = sample.reduce((a, b) => a * b, 1);
  if (size === MNIST_PIXELS && (sample.length === 1 || sample.join(',') === '28,28,1')) {
    const { test } = loadMnist();
    const values = new Float32Array(batch * size);
    for (let i = 0; i < batch; i++) values.set(test.x.subarray((i % test.count) * size, (i % test.count + 1) * size), i * size);
    return { x: tf.tensor(values, [batch, ...sample]), source: 'MNIST test digits' };
  }
  return { x: tf.randomUniform([batch, ...sample], 0, 1, 'float32', 1), source: 'seeded uniform [0, 1) values' };
}

interface Timing {
  name: string;
  backend: BackendName;
  model: string;
  medianMs: number;
  minMs: number;
  rowsPerSecond: number;
}

type RunOnce = () => void;

/** A full forward pass, results read back (that is what an application waits for). */
function fullPass(model: Model, x: Tensor): RunOnce {
  return () => {
    const out = model.apply(x);
    out.dataSync();
    out.dispose();
  };
}

function earlyExitPass(model: Model, x: Tensor): RunOnce {
  return () => {
    const result = earlyExitPredict(model, x);
    result.logits.dataSync();
    result.logits.dispose();
  };
}

export function benchCommand(run: Runner): Command {
  const command = new Command('bench')
    .description('time inference against a baseline in the same run, or run a repo benchmark')
    .argument('<model.rsm|name>', 'a saved model, or the name of a benchmark in the repository\'s bench/ (e.g. gemm)')
    .argument('[args...]', 'arguments passed to a repository benchmark')
    .option('--batch <n>', 'rows per forward pass', '256')
    .option('--backend <name>', 'backend of the measured model: wasm or cpu', 'wasm')
    .option('--threads <n>', 'wasm worker threads (default: all cores)')
    .option('--baseline <what>', 'a .rsm file (e.g. the unpruned model) on the same backend, or a backend name (default: the other backend)')
    .option('--repeats <n>', 'timed passes per side (the median is reported)', '20')
    .option('--warmup <n>', 'untimed passes per side first', '3')
    .allowUnknownOption(false);
  common(command);
  return command.action(
    run(async (context, [target, ...rest], options) => {
      if (!/\.rsm$/i.test(target)) {
        const script = findRepoBench(context.cwd);
        if (!script) throw new CliError('NOT_IN_REPOSITORY', `'${target}' is not a .rsm file and there is no bench/run.mjs above ${context.cwd}: repository benchmarks run inside the rs repository (pnpm build first).`, { target });
        const status = await runRepoBench(context, script, [target, ...rest.filter((a) => a !== undefined)]);
        context.emitJson({ command: 'bench', benchmark: target, exitCode: status, results: join(dirname(script), 'results', `${target}.json`) });
        if (status !== 0) throw new CliError('NOT_IN_REPOSITORY', `benchmark '${target}' exited with status ${status}.`, { status });
        return;
      }
      if (rest.filter((a) => a !== undefined).length > 0) throw usage(`Extra arguments after a model file: ${rest.join(' ')}.`);
      const batch = number('--batch', options.batch, { integer: true, min: 1 });
      const repeats = number('--repeats', options.repeats, { integer: true, min: 1 });
      const warmup = number('--warmup', options.warmup, { integer: true, min: 0 });
      const backend = choice('--backend', options.backend, BACKENDS);
      const baselineFile = options.baseline !== undefined && /\.rsm$/i.test(options.baseline) ? (options.baseline as string) : undefined;
      const baselineBackend: BackendName = baselineFile ? backend : choice('--baseline', options.baseline ?? (backend === 'wasm' ? 'cpu' : 'wasm'), BACKENDS);
      if (!baselineFile && baselineBackend === backend) throw usage(`--baseline ${baselineBackend} is the measured backend itself: name the other backend or a .rsm file.`);

      // Plan: sides to time, each on its backend. Sides on the same backend alternate passes
      // (drift hits both equally); a side on another backend runs as its own block.
      const sides: { name: string; file: string; backend: BackendName; mode: 'full' | 'exit' }[] = [{ name: 'model', file: target, backend, mode: 'full' }];
      const timings: Timing[] = [];
      let policy: ReturnType<typeof exitPolicy>;
      let inputSource = '';
      let threads: number | undefined;
      let progress: ReturnType<typeof createProgress> | undefined;
      let done = 0;
      const tick = () => progress?.update(++done, '');
      const measure = async (list: typeof sides, on: BackendName) => {
        await setupBackend(on, options.threads);
        if (on === 'wasm') threads = (await import('@rs/backend-wasm')).threadsCount();
        const models: Model[] = [];
        let x: Tensor | undefined;
        try {
          for (const side of list) models.push(await loadModel(context.cwd, side.file, options.plugin));
          const input = benchInput(models[0], batch);
          x = input.x;
          inputSource = input.source;
          const fns = list.map((side, i) => (side.mode === 'exit' ? earlyExitPass(models[i], x as Tensor) : fullPass(models[i], x as Tensor)));
          for (const fn of fns) for (let i = 0; i < warmup; i++) fn();
          // Interleaved: pass k of every side, then pass k + 1...
          const times = fns.map(() => [] as number[]);
          for (let k = 0; k < repeats; k++) {
            fns.forEach((fn, i) => {
              const start = performance.now();
              fn();
              times[i].push(performance.now() - start);
              tick();
            });
          }
          list.forEach((side, i) => {
            const sorted = times[i].sort((a, b) => a - b);
            const medianMs = sorted[Math.floor(sorted.length / 2)];
            timings.push({ name: side.name, backend: on, model: side.file, medianMs, minMs: sorted[0], rowsPerSecond: (batch * 1000) / medianMs });
          });
        } finally {
          x?.dispose();
          for (const m of models) m.dispose();
        }
      };
      try {
        // The stored exit policy (rs inspect shows it) is benchmarked too: early exit vs full pass.
        await setupBackend('cpu');
        const probe = await loadModel(context.cwd, target, options.plugin);
        policy = exitPolicy(probe);
        probe.dispose();
        if (policy) sides.push({ name: 'early exit (stored policy)', file: target, backend, mode: 'exit' });
        progress = createProgress(context, { label: 'bench', total: (sides.length + 1) * repeats, unit: 'timed passes' });
        if (baselineFile) {
          await measure([...sides, { name: 'baseline', file: baselineFile, backend, mode: 'full' }], backend);
        } else {
          await measure(sides, backend);
          await measure([{ name: 'baseline', file: target, backend: baselineBackend, mode: 'full' }], baselineBackend);
        }
      } finally {
        progress?.stop();
      }
      const base = timings.find((t) => t.name === 'baseline') as Timing;
      const rows = timings.map((t) => ({ ...t, ratio: t.medianMs / base.medianMs }));
      const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform}-${process.arch}`, wasmThreads: threads };
      context.emitJson({ command: 'bench', model: target, batch, repeats, warmup, input: inputSource, baseline: baselineFile ?? `${baselineBackend} backend`, exitPolicy: policy, results: rows, machine });
      if (context.json) return;
      context.out(`${target}: batch ${batch}, ${inputSource}, median of ${repeats} passes after ${warmup} warm-up (results read back)`);
      const lines = rows.map((r) => `  ${r.name.padEnd(28)} ${r.backend.padEnd(5)} ${r.medianMs.toFixed(2).padStart(9)} ms  ${int(r.rowsPerSecond).padStart(10)} rows/s  ${r.name === 'baseline' ? '' : `ratio to baseline ${r.ratio.toFixed(3)}`}`.trimEnd());
      for (const line of lines) context.out(line);
      const speedup = base.medianMs / rows[0].medianMs;
      context.out(`speed-up over the baseline (${baselineFile ?? `${baselineBackend} backend`}): ${speedup.toFixed(2)}x`);
      context.out(`machine: ${machine.cpus} x ${machine.cpu}, Node ${machine.node}${threads ? `, wasm threads ${threads}` : ''}`);
    }),
  );
}
