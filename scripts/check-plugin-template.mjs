// Checks examples/plugin-template the way a plugin author uses it: copied out of this
// repository, installed with npm against the published form of @rs/core and @rs/backend-cpu
// (packed tarballs), type-checked, built and tested.
//
//   node scripts/check-plugin-template.mjs [tarball-dir]
//
// The tarballs come from the argument, else from the directory in RS_TARBALLS (e.g. the one
// `node scripts/check-packed.mjs --keep <dir>` fills), else this script builds the two packages and packs them
// itself (`pnpm pack` in packages/core and packages/backend-cpu). Everything else the
// template needs (vitest, typescript, tsup, tfjs) comes from the npm registry. RS_KEEP_TMP=1
// keeps the temporary copy; RS_NPM_CACHE sets npm's cache directory (default: npm's own).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const template = join(root, 'examples', 'plugin-template');
const started = Date.now();
const temps = [];

function fail(message) {
  console.error(`check-plugin-template: ${message}`);
  cleanup();
  process.exit(1);
}

function cleanup() {
  if (process.env.RS_KEEP_TMP === '1') {
    for (const dir of temps) console.log(`check-plugin-template: kept ${dir}`);
    return;
  }
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
}

function run(command, args, cwd, env = {}) {
  const shown = args.map((a) => (a.includes('\n') ? `'${a.split('\n')[0]} ...'` : a)).join(' ');
  console.log(`check-plugin-template: [${relative(root, cwd) || '.'}] ${command} ${shown}`);
  const result = spawnSync(command, args, { cwd, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.error) fail(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} failed with exit code ${result.status}`);
}

function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

// 1. The tarballs.
let tarballs = process.argv[2] ?? process.env.RS_TARBALLS;
if (tarballs) {
  tarballs = resolve(tarballs);
  if (!existsSync(tarballs)) fail(`tarball directory ${tarballs} does not exist`);
} else {
  tarballs = tempDir('rs-tarballs-');
  run('pnpm', ['--filter', '@rs/core', '--filter', '@rs/backend-cpu', 'run', 'build'], root);
  // pnpm 9's pack packs one package at a time (it rewrites `workspace:` ranges to versions).
  for (const dir of ['core', 'backend-cpu']) run('pnpm', ['pack', '--pack-destination', tarballs], join(root, 'packages', dir));
}
const files = readdirSync(tarballs);
const find = (name) => {
  // pnpm and npm name a scoped package's tarball `scope-name-<version>.tgz`.
  const matches = files.filter((f) => new RegExp(`^${name}-\\d+\\.\\d+\\.\\d+.*\\.tgz$`).test(f));
  if (matches.length !== 1) fail(`expected one ${name}-<version>.tgz in ${tarballs}, found ${matches.length ? matches.join(', ') : 'none'} (files: ${files.join(', ') || 'none'})`);
  return join(tarballs, matches[0]);
};
const core = find('rs-core');
const backend = find('rs-backend-cpu');

// 2. A copy of the template outside the workspace, depending on the tarballs.
const work = tempDir('rs-plugin-template-');
if (relative(root, work).split(/[\\/]/)[0] !== '..') fail(`the temporary directory ${work} is inside the repository; set TMPDIR elsewhere`);
cpSync(template, work, { recursive: true, filter: (src) => !/[\\/](node_modules|dist)([\\/]|$)/.test(relative(template, src) ? `/${relative(template, src)}` : '') });
const pkgPath = join(work, 'package.json');
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
for (const [name, file] of [['@rs/core', core], ['@rs/backend-cpu', backend]]) {
  if (!pkg.devDependencies?.[name]) fail(`the template's package.json has no devDependency ${name}`);
  pkg.devDependencies[name] = `file:${file}`;
}
if (!pkg.peerDependencies?.['@rs/core'] || pkg.peerDependencies['@rs/core'].startsWith('workspace:')) {
  fail('the template must peer-depend on @rs/core by a version range');
}
writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);

// 3. Install, check, build, test: what its README tells an author to run.
const npmEnv = process.env.RS_NPM_CACHE ? { npm_config_cache: resolve(process.env.RS_NPM_CACHE) } : {};
run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], work, npmEnv);
run('npm', ['run', 'typecheck'], work, npmEnv);
run('npm', ['run', 'build'], work, npmEnv);
for (const out of ['dist/index.js', 'dist/index.d.ts', 'dist/onnx.js', 'dist/onnx.d.ts']) {
  if (!existsSync(join(work, out))) fail(`the build did not write ${out}`);
}
run('npm', ['test'], work, npmEnv);

// 4. The built module is what `rs --plugin <package>` loads: rs resolves the package name with
// require.resolve (so `exports` needs a condition that require matches), imports it and calls
// its register(registry).
const probe = [
  "const { createRequire } = await import('node:module');",
  "const { pathToFileURL } = await import('node:url');",
  `const resolved = createRequire(process.cwd() + '/package.json').resolve(${JSON.stringify(pkg.name)});`,
  'const m = await import(pathToFileURL(resolved).href);',
  "const { createOpRegistry } = await import('@rs/core');",
  "if (typeof m.register !== 'function') throw new Error('dist/index.js does not export register(registry)');",
  'const r = m.register(createOpRegistry());',
  "for (const op of ['prelu', 'rmsNorm']) if (!r.has(op)) throw new Error(`register() did not register ${op}`);",
  "console.log('check-plugin-template: dist/index.js exports register(registry), which registers ' + m.ops.map((o) => o.name).join(', '));",
].join('\n');
run('node', ['--input-type=module', '-e', probe], work, npmEnv);

cleanup();
console.log(`check-plugin-template: ok in ${((Date.now() - started) / 1000).toFixed(1)} s (template built and tested against ${relative(tarballs, core)}, ${relative(tarballs, backend)})`);
