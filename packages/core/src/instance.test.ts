// One @rs/core and one TensorFlow.js engine per process (issue 18): two copies of @rs/core or of
// tfjs-core, really loaded side by side in a child Node process, give DUPLICATE_INSTANCE naming
// both paths; no backend gives NO_BACKEND with the way to install one. The children run the
// built package (the test command builds every package first).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSingleInstance, coreInstances } from './instance';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const dist = join(pkg, 'dist');
const requireFromCore = createRequire(join(pkg, 'package.json'));
/** The tfjs-core package folder @rs/core uses, and the files its Node build requires. */
const tfjsMain = realpathSync(requireFromCore.resolve('@tensorflow/tfjs-core'));
const tfjsDir = join(dirname(tfjsMain), '..');
const cpuBackend = realpathSync(requireFromCore.resolve('@tensorflow/tfjs-backend-cpu'));

let temp: string;

/** Runs an ES module script in a fresh Node process; returns the JSON it printed last. */
function child(name: string, source: string): Record<string, unknown> {
  const file = join(temp, name);
  writeFileSync(file, source);
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
  const lines = run.stdout.trim().split('\n');
  if (run.status !== 0) throw new Error(`${name} exited ${String(run.status)}:\n${run.stdout}\n${run.stderr}`);
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
}

const CATCH = `
function report(fn) {
  try { fn(); return { threw: false }; }
  catch (e) { return { threw: true, code: e.code, message: e.message, isRsError: e instanceof Error && e.code !== undefined }; }
}
`;

beforeAll(() => {
  const built = existsSync(join(dist, 'index.js')) ? readdirSync(dist).filter((f) => f.endsWith('.js')) : [];
  if (!built.some((f) => readFileSync(join(dist, f), 'utf8').includes('DUPLICATE_INSTANCE'))) {
    throw new Error('These tests run the built @rs/core: build it first (pnpm --filter @rs/core build).');
  }
  temp = realpathSync(mkdtempSync(join(tmpdir(), 'rs-one-engine-')));
  // A second copy of @rs/core, as a plugin that bundles its own would bring: its built output
  // with a package.json, in another node_modules, using the same tfjs-core.
  const copy = join(temp, 'plugin/node_modules/@rs/core');
  mkdirSync(copy, { recursive: true });
  cpSync(dist, join(copy, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') });
  copyFileSync(join(pkg, 'package.json'), join(copy, 'package.json'));
  mkdirSync(join(temp, 'plugin/node_modules/@tensorflow'), { recursive: true });
  symlinkSync(tfjsDir, join(temp, 'plugin/node_modules/@tensorflow/tfjs-core'), 'dir');
  // A second copy of tfjs-core (a user's own tfjs next to ours): its Node build and package.json,
  // with the packages it requires linked from the real one's neighbours.
  const tf2 = join(temp, 'user/node_modules/@tensorflow/tfjs-core');
  mkdirSync(join(tf2, 'dist'), { recursive: true });
  copyFileSync(tfjsMain, join(tf2, 'dist/tf-core.node.js'));
  copyFileSync(join(tfjsDir, 'package.json'), join(tf2, 'package.json'));
  const requireFromTfjs = createRequire(tfjsMain);
  for (const dep of ['seedrandom', 'node-fetch', 'long']) {
    let target: string;
    try {
      target = dirname(realpathSync(requireFromTfjs.resolve(`${dep}/package.json`)));
    } catch {
      continue;
    }
    symlinkSync(target, join(temp, 'user/node_modules', dep), 'dir');
  }
});

afterAll(() => {
  if (temp) rmSync(temp, { recursive: true, force: true });
});

describe('checkSingleInstance', () => {
  it('passes in a process with one @rs/core and one tfjs-core (this one)', () => {
    expect(() => checkSingleInstance()).not.toThrow();
    expect(coreInstances()).toHaveLength(1);
  });

  it('two copies of @rs/core in one process: DUPLICATE_INSTANCE naming both paths, at Model.create, registerBackend and on demand', () => {
    const second = join(temp, 'plugin/node_modules/@rs/core/dist/index.js');
    const out = child(
      'two-cores.mjs',
      `${CATCH}
await import(${JSON.stringify(cpuBackend)});
const ours = await import(${JSON.stringify(join(dist, 'index.js'))});
const alone = report(() => ours.checkSingleInstance());
const plugin = await import(${JSON.stringify(second)});
console.log(JSON.stringify({
  alone,
  check: report(() => ours.checkSingleInstance()),
  create: report(() => ours.Model.create(ours.lenet300100())),
  pluginCreate: report(() => plugin.Model.create(plugin.lenet300100())),
  register: report(() => ours.registerBackend({ name: 'cpu', package: '@rs/backend-cpu' })),
}));
`,
    );
    expect(out.alone).toEqual({ threw: false });
    for (const key of ['check', 'create', 'pluginCreate', 'register']) {
      const r = out[key] as { threw: boolean; code: string; message: string };
      expect(r.threw, key).toBe(true);
      expect(r.code, key).toBe('DUPLICATE_INSTANCE');
      expect(r.message).toContain('Two copies of @rs/core');
      expect(r.message).toContain(`${pkg} (dist/`);
      expect(r.message).toContain(`${join(temp, 'plugin/node_modules/@rs/core')} (dist/`);
      expect(r.message).toMatch(/npm dedupe/);
      expect(r.message).toMatch(/resolve\.dedupe/);
    }
  });

  it('the ESM and the CJS build of @rs/core in one process are two copies; its entries (index, testing) are one', () => {
    const out = child(
      'esm-cjs.mjs',
      `${CATCH}
import { createRequire } from 'node:module';
const ours = await import(${JSON.stringify(join(dist, 'index.js'))});
await import(${JSON.stringify(join(dist, 'testing.js'))});
const entries = report(() => ours.checkSingleInstance());
createRequire(import.meta.url)(${JSON.stringify(join(dist, 'index.cjs'))});
console.log(JSON.stringify({ entries, both: report(() => ours.checkSingleInstance()) }));
`,
    );
    expect(out.entries).toEqual({ threw: false });
    const both = out.both as { code: string; message: string };
    expect(both.code).toBe('DUPLICATE_INSTANCE');
    // Both copies are this package folder: one loaded from an ESM file, the other from a CJS one.
    expect(both.message.split(`${pkg} (dist/`)).toHaveLength(3);
    expect(both.message).toMatch(/\.js, version /);
    expect(both.message).toMatch(/\.cjs, version /);
  });

  it('a second tfjs-core loaded after ours (the "Platform node has already been set" case): DUPLICATE_INSTANCE naming both', () => {
    const theirs = join(temp, 'user/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js');
    const out = child(
      'tfjs-after.mjs',
      `${CATCH}
import { createRequire } from 'node:module';
await import(${JSON.stringify(cpuBackend)});
const ours = await import(${JSON.stringify(join(dist, 'index.js'))});
const alone = report(() => ours.checkSingleInstance());
createRequire(import.meta.url)(${JSON.stringify(theirs)});
console.log(JSON.stringify({ alone, check: report(() => ours.checkSingleInstance()), create: report(() => ours.Model.create(ours.lenet300100())) }));
`,
    );
    expect(out.alone).toEqual({ threw: false });
    for (const key of ['check', 'create']) {
      const r = out[key] as { code: string; message: string };
      expect(r.code, key).toBe('DUPLICATE_INSTANCE');
      expect(r.message).toContain('@tensorflow/tfjs-core');
      expect(r.message).toContain(tfjsMain);
      expect(r.message).toContain(theirs);
    }
  });

  it('a second tfjs-core that made its own engine (globalThis._tfengine replaced): DUPLICATE_INSTANCE naming both', () => {
    const theirs = join(temp, 'user/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js');
    const out = child(
      'tfjs-engine.mjs',
      `${CATCH}
import { createRequire } from 'node:module';
const ours = await import(${JSON.stringify(join(dist, 'index.js'))});
delete globalThis._tfengine;
createRequire(import.meta.url)(${JSON.stringify(theirs)});
console.log(JSON.stringify({ engines: globalThis._tfengine !== ours.tf.engine(), check: report(() => ours.checkSingleInstance()) }));
`,
    );
    expect(out.engines).toBe(true);
    const r = out.check as { code: string; message: string };
    expect(r.code).toBe('DUPLICATE_INSTANCE');
    expect(r.message).toContain('two engines');
    expect(r.message).toContain(tfjsMain);
    expect(r.message).toContain(theirs);
  });

  it('a second tfjs-core loaded before ours (its engine is the one ours uses): DUPLICATE_INSTANCE naming both', () => {
    const theirs = join(temp, 'user/node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js');
    const out = child(
      'tfjs-before.mjs',
      `${CATCH}
import { createRequire } from 'node:module';
createRequire(import.meta.url)(${JSON.stringify(theirs)});
const ours = await import(${JSON.stringify(join(dist, 'index.js'))});
console.log(JSON.stringify({ check: report(() => ours.checkSingleInstance()) }));
`,
    );
    const r = out.check as { code: string; message: string };
    expect(r.code).toBe('DUPLICATE_INSTANCE');
    expect(r.message).toContain(tfjsMain);
    expect(r.message).toContain(theirs);
  });
});

describe('no backend', () => {
  it('Model.create and useBackend without a backend: NO_BACKEND saying how to install one', () => {
    const out = child(
      'no-backend.mjs',
      `${CATCH}
const core = await import(${JSON.stringify(join(dist, 'index.js'))});
let use;
try { await core.useBackend('cpu'); use = { threw: false }; } catch (e) { use = { code: e.code, message: e.message }; }
console.log(JSON.stringify({ create: report(() => core.Model.create(core.lenet300100())), use }));
`,
    );
    const create = out.create as { code: string; message: string };
    expect(create.code).toBe('NO_BACKEND');
    expect(create.message).toContain("import { install } from '@rs/backend-wasm'; await install();");
    expect(create.message).not.toMatch(/No backend found in registry/);
    expect((out.use as { code: string }).code).toBe('NO_BACKEND');
  });
});
