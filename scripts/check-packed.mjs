// Checks the packages as a user gets them (docs/packaging.md). Run after `pnpm build`.
//
//   node scripts/check-packed.mjs [--keep <dir>]
//
// 1. Packs every published (non-private) package with `pnpm pack` (which applies
//    `publishConfig`: the `@rs/source` condition is not published, `workspace:` ranges become
//    versions) and checks each tarball: no src/, no dist/types, no source map, the root LICENSE.
// 2. Runs @arethetypeswrong/cli (attw) on each tarball and publint on each tarball; any problem
//    fails the check.
// 3. Installs the tarballs of @rs/core, @rs/prune and @rs/backend-cpu with npm (plus
//    @tensorflow/tfjs-core, their peer) into a fresh directory under os.tmpdir(), then
//    - runs the same short script as ESM (.mjs) and as CommonJS (.cjs): one epoch of a tiny MLP on
//      synthetic data, structured and weight pruning, save to a buffer, load, outputs equal;
//    - type-checks the TypeScript version of the script (.mts and .cts) with `tsc --noEmit`
//      under module/moduleResolution nodenext, strict, skipLibCheck false;
//    - proves the type check can fail: a copy with a deliberate type error must fail tsc with
//      that error (TS2322 at the line of the error).
//    and prints the installed size of node_modules/@rs/*.
//
// --keep <dir>: the tarballs are written to <dir> (created if missing; old tarballs of the same
// names are replaced) and left there, e.g. for another package's check to install them; without
// it they go to a temporary directory that is removed at the end.
//
// Reuse from another script: `import { packPublished } from './check-packed.mjs'`;
// `await packPublished(dir)` packs every published package into dir and returns
// Map<package name, absolute tarball path>. `publishedPackages()` lists { name, dir } for each.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require_ = (await import('node:module')).createRequire(join(root, 'package.json'));

/** Every published (non-private) workspace package under packages/: { name, version, dir }. */
export function publishedPackages() {
  const out = [];
  for (const d of readdirSync(join(root, 'packages')).sort()) {
    const file = join(root, 'packages', d, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    if (!pkg.private) out.push({ name: pkg.name, version: pkg.version, dir: join(root, 'packages', d) });
  }
  return out;
}

function run(cmd, args, options = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

async function inParallel(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Packs every published package into `dest` with pnpm; returns Map<name, tarball path>. */
export async function packPublished(dest) {
  mkdirSync(dest, { recursive: true });
  const packages = publishedPackages();
  for (const { dir } of packages) {
    if (!existsSync(join(dir, 'dist', 'index.js'))) throw new Error(`${dir}/dist is missing: run \`pnpm build\` first`);
  }
  const tarballs = new Map();
  await inParallel(packages, 2, async ({ name, version, dir }) => {
    const tarball = join(dest, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`);
    rmSync(tarball, { force: true });
    const { code, output } = await run('pnpm', ['pack', '--pack-destination', dest], { cwd: dir });
    if (code !== 0 || !existsSync(tarball)) throw new Error(`pnpm pack of ${name} failed:\n${output}`);
    tarballs.set(name, tarball);
  });
  return tarballs;
}

function tarList(tarball) {
  const r = spawnSync('tar', ['-tvzf', tarball], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar -tzf ${tarball}: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.trim().split(/\s+/);
      return { size: Number(parts[2]), path: parts.slice(5).join(' ') };
    });
}

function tarRead(tarball, path) {
  const r = spawnSync('tar', ['-xzOf', tarball, path], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${path} missing in ${tarball}`);
  return r.stdout;
}

/** Problems in the content of one tarball (an empty list when there is none). */
function checkTarball(name, tarball) {
  const problems = [];
  const files = tarList(tarball);
  const manifest = tarRead(tarball, 'package/package.json');
  if (manifest.includes('@rs/source')) problems.push(`${name}: the published package.json still has the @rs/source condition`);
  if (manifest.includes('workspace:')) problems.push(`${name}: the published package.json has a workspace: range`);
  for (const f of files) {
    if (/^package\/(src|dist\/types)\//.test(f.path) || f.path.endsWith('.map') || f.path.endsWith('.tsbuildinfo')) {
      problems.push(`${name}: ${f.path} should not be published`);
    }
  }
  const license = files.some((f) => f.path === 'package/LICENSE') ? tarRead(tarball, 'package/LICENSE') : '';
  if (license !== readFileSync(join(root, 'LICENSE'), 'utf8')) problems.push(`${name}: LICENSE missing or not the root LICENSE`);
  return { problems, files: files.length, unpacked: files.reduce((s, f) => s + f.size, 0) };
}

async function attw(tarball) {
  const bin = join(dirname(require_.resolve('@arethetypeswrong/cli/package.json')), 'dist', 'index.js');
  const { code, output } = await run(process.execPath, [bin, tarball, '--format', 'ascii', '--no-color']);
  return { ok: code === 0, output: output.trim() };
}

async function publintTarball(tarball) {
  const { publint } = await import(pathToFileURL(require_.resolve('publint')).href);
  const { formatMessage } = await import(pathToFileURL(require_.resolve('publint/utils')).href);
  const buffer = readFileSync(tarball);
  const data = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  const { messages, pkg } = await publint({ pack: { tarball: data }, level: 'suggestion', strict: true });
  return messages.map((m) => `${m.type}: ${formatMessage(m, pkg) ?? m.code}`);
}

// The user's script. `IMPORTS` is replaced per module format; the body is the same.
const scriptBody = `
async function main() {
  await install();
  const graph: GraphDef = {
    inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
      { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: 3 } },
    ],
    outputs: ['fc2'],
  };
  const model = Model.create(graph, { seed: 0 });
  const x = tf.randomUniform([64, 4], -1, 1, 'float32', 1);
  const y = tf.cast(tf.oneHot(tf.argMax(tf.slice(x, [0, 0], [64, 3]), 1), 3), 'float32');
  const history = await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 16 });
  const removed: Record<string, number[]> = pruneUnits(model, { fraction: 0.5, score: 'l1', groups: ['fc1'] }).removed;
  pruneWeights(model, { sparsity: 0.5, score: 'l1', scope: 'layer' });
  const loaded = loadFromBuffer(saveToBuffer(model));
  const a = model.predict(x);
  const b = loaded.predict(x);
  const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  if (diff !== 0) throw new Error('loaded model differs from the saved one by ' + diff);
  if (removed.fc1.length !== 4) throw new Error('pruneUnits removed ' + removed.fc1.length + ' units of fc1, expected 4');
  console.log(FORMAT + ': trained 1 epoch (' + Object.keys(history).join(', ') + '), pruned fc1 8 -> 4 units, saved, loaded, outputs equal');
}
main().catch((error: unknown) => {
  console.error(error);
  throw error;
});
`;
const esmImports = `import { Model, fit, saveToBuffer, loadFromBuffer, tf, type GraphDef } from '@rs/core';
import { pruneUnits, pruneWeights } from '@rs/prune';
import { install } from '@rs/backend-cpu';
const FORMAT = 'ESM';`;
const cjsImports = esmImports.replace("'ESM'", "'CJS'");
/** TypeScript -> plain JavaScript for this script only (type annotations removed). */
const stripTypes = (ts) =>
  ts
    .replace(', type GraphDef', '')
    .replace(': GraphDef', '')
    .replace(': Record<string, number[]>', '')
    .replace('(error: unknown)', '(error)');
const cjsJs = (ts) =>
  stripTypes(ts)
    .replace(/^import \{ (.*) \} from '(.*)';$/gm, "const { $1 } = require('$2');");

async function installAndRun(tarballs) {
  const dir = mkdtempSync(join(tmpdir(), 'rs-packed-install-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'rs-packed-check', version: '0.0.0', private: true }, null, 2));
    const wanted = ['@rs/core', '@rs/prune', '@rs/backend-cpu'].map((n) => tarballs.get(n));
    const npm = await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...wanted, '@tensorflow/tfjs-core@4.22.0'], { cwd: dir });
    if (npm.code !== 0) throw new Error(`npm install failed:\n${npm.output}`);
    const esmTs = `${esmImports}\n${scriptBody}`;
    const cjsTs = `${cjsImports}\n${scriptBody}`;
    writeFileSync(join(dir, 'smoke.mjs'), stripTypes(esmTs));
    writeFileSync(join(dir, 'smoke.cjs'), cjsJs(cjsTs));
    writeFileSync(join(dir, 'smoke.mts'), esmTs);
    writeFileSync(join(dir, 'smoke.cts'), cjsTs);
    // The deliberate type error: a number where the model's prediction (a Tensor) is expected.
    const bad = esmTs.replace('const b = loaded.predict(x);', 'const b: number = loaded.predict(x);');
    if (bad === esmTs) throw new Error('could not insert the deliberate type error');
    const badLine = bad.split('\n').findIndex((l) => l.includes('const b: number')) + 1;
    writeFileSync(join(dir, 'bad.mts'), bad);
    const compilerOptions = { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], strict: true, skipLibCheck: false, noEmit: true };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['smoke.mts', 'smoke.cts'] }, null, 2));
    writeFileSync(join(dir, 'tsconfig.bad.json'), JSON.stringify({ compilerOptions, files: ['bad.mts'] }, null, 2));

    const results = [];
    for (const file of ['smoke.mjs', 'smoke.cjs']) {
      const r = await run(process.execPath, [file], { cwd: dir });
      if (r.code !== 0) throw new Error(`node ${file} failed:\n${r.output}`);
      results.push(r.output.trim().split('\n').at(-1));
    }
    const tsc = join(dirname(require_.resolve('typescript/package.json')), 'bin', 'tsc');
    const good = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir });
    if (good.code !== 0) throw new Error(`tsc on smoke.mts/smoke.cts (nodenext, strict, skipLibCheck false) failed:\n${good.output}`);
    results.push('tsc --noEmit (nodenext, strict, skipLibCheck false) on smoke.mts and smoke.cts: no error');
    const failing = await run(process.execPath, [tsc, '-p', 'tsconfig.bad.json'], { cwd: dir });
    const expected = new RegExp(`bad\\.mts\\(${badLine},\\d+\\): error TS2322: Type 'Tensor(<Rank>)?' is not assignable to type 'number'`);
    if (failing.code === 0 || !expected.test(failing.output)) {
      throw new Error(`tsc should fail on bad.mts line ${badLine} with TS2322, got (exit ${failing.code}):\n${failing.output}`);
    }
    results.push(`tsc on the copy with a deliberate type error fails as it should: ${failing.output.trim().split('\n')[0]}`);
    const du = spawnSync('du', ['-sk', ...readdirSync(join(dir, 'node_modules', '@rs')).map((n) => join('node_modules', '@rs', n)), 'node_modules'], { cwd: dir, encoding: 'utf8' });
    results.push(`installed size (du -sk):\n${du.stdout.trim().replace(/^/gm, '  ')}`);
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const started = Date.now();
  const keepIndex = process.argv.indexOf('--keep');
  const keep = keepIndex >= 0 ? resolve(process.argv[keepIndex + 1] ?? '') : undefined;
  if (keepIndex >= 0 && !process.argv[keepIndex + 1]) throw new Error('--keep needs a directory');
  const dest = keep ?? mkdtempSync(join(tmpdir(), 'rs-packed-'));
  const failures = [];
  try {
    const tarballs = await packPublished(dest);
    const names = [...tarballs.keys()].sort();
    const rows = await inParallel(names, 2, async (name) => {
      const tarball = tarballs.get(name);
      const content = checkTarball(name, tarball);
      const types = await attw(tarball);
      const lint = await publintTarball(tarball);
      failures.push(...content.problems);
      if (!types.ok) failures.push(`${name}: attw reports a problem:\n${types.output}`);
      for (const message of lint) failures.push(`${name}: publint ${message}`);
      return `${name.padEnd(18)} ${String(content.files).padStart(3)} files ${(content.unpacked / 1024).toFixed(0).padStart(5)} kB unpacked  attw ${types.ok ? 'ok' : 'PROBLEM'}  publint ${lint.length === 0 ? 'ok' : lint.length + ' message(s)'}`;
    });
    console.log(rows.join('\n'));
    if (failures.length > 0) throw new Error(failures.join('\n'));
    for (const line of await installAndRun(tarballs)) console.log(line);
    if (keep) console.log(`tarballs kept in ${keep}`);
    console.log(`packed packages check passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    if (!keep) rmSync(dest, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`packed packages check failed:\n${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
}
