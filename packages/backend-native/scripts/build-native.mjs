// Compiles native/rsnative.c into build/librsnative.so (or .dylib) with the system C compiler.
// Runs as the package's `install` and `build` scripts. Never fails the install: where no
// compiler is present (or the compile fails) it says so and exits 0; `install()` of the
// package then throws a NativeBackendError naming what is missing. Nothing is downloaded.
// Options: --quiet (only report failures), CC=<compiler> to choose the compiler,
// RS_NATIVE_BUILD_DIR=<folder> to build elsewhere than build/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const source = join(root, 'native', 'rsnative.c');
const outDir = process.env.RS_NATIVE_BUILD_DIR || join(root, 'build');
const ext = process.platform === 'darwin' ? 'dylib' : 'so';
const output = join(outDir, `librsnative.${ext}`);
const status = join(outDir, 'status.json');

function report(ok, message, degraded = false) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(status, JSON.stringify({ ok, message, compiler: cc, at: new Date().toISOString() }, null, 2));
  if (!ok || degraded || !quiet) console[ok && !degraded ? 'log' : 'warn'](`@rs/backend-native: ${message}`);
  process.exit(0);
}

const cc = process.env.CC || 'cc';
if (!existsSync(source)) report(false, `source ${source} is missing; the package is incomplete.`);
const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  report(false, `no C compiler found (tried '${cc}'; set CC or install one, e.g. 'apt-get install gcc'); the native backend is not built and install() will say so.`);
}
mkdirSync(outDir, { recursive: true });
// -march=native: the library is built on the machine that runs it (see README for prebuilt
// binaries, which use a portable baseline instead). OpenMP gives the kernels their threads;
// without it (e.g. Apple clang) the same code runs single-threaded. -fno-math-errno and
// -fno-trapping-math (no code reads errno or floating-point exception flags) let loops with
// clamps and floorf vectorise; neither changes a result (no reassociation, unlike -ffast-math).
const base = ['-O3', '-std=c11', '-shared', '-fPIC', '-fno-math-errno', '-fno-trapping-math', '-Wall', source, '-o', output];
const arch = process.env.RS_NATIVE_PORTABLE ? [] : ['-march=native'];
const attempts = [
  [...arch, '-fopenmp', ...base, '-ldl', '-lm'],
  [...arch, ...base, '-ldl', '-lm'],
  [...base, '-ldl', '-lm'],
];
let last = '';
let first = '';
for (const args of attempts) {
  const run = spawnSync(cc, args, { encoding: 'utf8' });
  // A build without OpenMP (or without -march=native) says why the fuller one failed: a compile
  // error in the source would otherwise pass unnoticed as a single-threaded library.
  if (run.status === 0) report(true, `built ${output} (${cc} ${args.filter((a) => a.startsWith('-') && a !== '-o').join(' ')})${first ? `; the build with ${attempts[0].filter((a) => a === '-fopenmp' || a === '-march=native').join(' ')} failed:\n${first}` : ''}`, first !== '');
  last = (run.stderr || run.error?.message || '').trim().split('\n').slice(-5).join('\n');
  first ||= last;
}
report(false, `compiling ${source} with '${cc}' failed:\n${last}`);
