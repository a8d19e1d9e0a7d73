// One @rs/core and one TensorFlow.js engine per process.
//
// A process that loads two copies of @rs/core (a plugin bundling its own, the ESM and the CJS
// build side by side) or two copies of @tensorflow/tfjs-core (the user's own tfjs next to ours)
// has two sets of registries, and tensors of one copy are invisible to the other. Nothing fails
// at import (throwing there is hostile: the application cannot even catch it); every copy
// registers itself in a registry on the global object when its module is evaluated, and the first
// operation that matters (Model.create, loading a model, installing or choosing a backend) or an
// explicit `checkSingleInstance()` raises a DUPLICATE_INSTANCE error naming both copies.
import { tf } from './tf';
import { RsError } from './errors';

/** Replaced by the build (tsup `define`) with the package version; absent when run from sources. */
declare const __RS_CORE_VERSION__: string | undefined;

/** The version of this copy of @rs/core (`source` when run from its TypeScript sources). */
export const coreVersion: string = typeof __RS_CORE_VERSION__ === 'string' ? __RS_CORE_VERSION__ : 'source';

/** One copy of @rs/core, as registered in the global registry. */
export interface CoreInstance {
  /** Where the copy was loaded from: a file path, or a URL in browsers. */
  path: string;
  version: string;
  /** Tells re-evaluations of one module (HMR, test runners resetting modules) from other copies. */
  key: string;
}

const REGISTRY = Symbol.for('@rs/core.instances');

const FIX =
  'Keep one copy: run `npm dedupe` (or `pnpm dedupe` / `yarn dedupe`), force one version with `overrides` ' +
  '(npm, `pnpm.overrides`) or `resolutions` (yarn), make @rs/core and @tensorflow/tfjs-core peerDependencies ' +
  "of the package that bundles its own, or set `resolve.dedupe: ['@rs/core', '@tensorflow/tfjs-core']` in the " +
  'bundler (Vite; webpack: `resolve.alias`). `npm ls @rs/core @tensorflow/tfjs-core` shows where the copies come from.';

interface Frame {
  file: string;
  line: string;
}

/**
 * The frames of a stack trace (V8 `at f (file:1:2)` / `at file:1:2`, Firefox and Safari
 * `f@file:1:2`), without node internals.
 */
function frames(stack: string | undefined): Frame[] {
  const out: Frame[] = [];
  for (const raw of (stack ?? '').split('\n')) {
    const text = raw.trim();
    const v8 = /^at (?:.*? \()?(.+?):(\d+):(\d+)\)?$/.exec(text);
    const gecko = v8 ? null : /^[^@]*@(.+?):(\d+):(\d+)$/.exec(text);
    const m = v8 ?? gecko;
    if (!m) continue;
    const file = m[1].replace(/^async /, '');
    if (file.startsWith('node:') || file.startsWith('internal/')) continue;
    out.push({ file, line: `${m[2]}:${m[3]}` });
  }
  return out;
}

/** A location without the query and hash a dev server adds (`?t=123`, `?v=abc`). */
function clean(file: string): string {
  const bare = file.replace(/[?#].*$/, '');
  if (!bare.startsWith('file://')) return bare;
  // file:///home/a/b.js -> /home/a/b.js, file:///C:/a/b.js -> C:/a/b.js
  const path = decodeURIComponent(bare.slice('file://'.length));
  return /^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path;
}

/** The file in which the first frame of `stack` outside this module runs, if any. */
function fileOf(stack: string | undefined, skip?: string): string | undefined {
  const found = frames(stack).find((f) => clean(f.file) !== skip);
  return found ? clean(found.file) : undefined;
}

function whereAmI(): { path: string; key: string } {
  const top = frames(new Error().stack)[0];
  if (!top) return { path: 'unknown location', key: `unknown:${Math.random()}` };
  const path = clean(top.file);
  // When the package's entry bundles (index, extend, testing) each carry this module, they are one
  // copy of the package per folder and module format. Anywhere else (a shared chunk, an
  // application bundle) the position within the file tells two bundled copies apart.
  const entry = /^(.*[\\/]dist[\\/])(?:index|extend|testing)\.(c?js)$/.exec(path);
  return { path, key: entry ? `${entry[1]}*.${entry[2]}` : `${path}:${top.line}` };
}

function registry(): CoreInstance[] {
  const holder = globalThis as unknown as Record<symbol, CoreInstance[] | undefined>;
  let list = holder[REGISTRY];
  if (!Array.isArray(list)) {
    list = [];
    Object.defineProperty(globalThis, REGISTRY, { value: list, configurable: true, writable: true, enumerable: false });
  }
  return list;
}

const thisCopy: CoreInstance = { ...whereAmI(), version: coreVersion };
{
  const list = registry();
  // The same module evaluated again (hot reload, a test runner resetting modules) or another
  // entry bundle of the same build is the same copy: it is registered once.
  if (!list.some((entry) => entry.key === thisCopy.key)) list.push(thisCopy);
}

/** `/app/node_modules/@rs/core (dist/index.js, version 0.1.0)`: the package folder first. */
function describe(entry: CoreInstance): string {
  const cut = Math.max(entry.path.lastIndexOf('/dist/'), entry.path.lastIndexOf('\\dist\\'), entry.path.lastIndexOf('/src/'), entry.path.lastIndexOf('\\src\\'));
  if (cut <= 0) return `${entry.path} (version ${entry.version})`;
  return `${entry.path.slice(0, cut)} (${entry.path.slice(cut + 1)}, version ${entry.version})`;
}

/** The copies of @rs/core loaded in this process (normally one). */
export function coreInstances(): readonly CoreInstance[] {
  return [...registry()];
}

/** The global object on which tfjs-core keeps its engine (its `getGlobalNamespace`). */
function tfjsGlobal(): Record<string, unknown> {
  const g = globalThis as Record<string, unknown>;
  for (const name of ['window', 'global', 'process', 'self']) {
    const candidate = g[name];
    if (typeof candidate === 'object' && candidate !== null) return candidate as Record<string, unknown>;
  }
  return g;
}

type Probe = () => unknown;

/** Runs `probe` (which throws or calls back inside some tfjs-core file) and names that file. */
function locate(probe: Probe): string {
  try {
    const result = probe();
    if (typeof result === 'string') return fileOf(result, thisCopy.path) ?? 'unknown location';
  } catch (error) {
    return fileOf((error as Error | undefined)?.stack, thisCopy.path) ?? 'unknown location';
  }
  return 'unknown location';
}

/** The file of the tfjs-core copy that @rs/core imported. */
function ourTfjs(): string {
  return locate(() => tf.util.assert(false, () => 'probe'));
}

interface EngineLike {
  ENV?: { constructor: unknown; get?: (flag: string) => unknown; platform?: unknown };
  tidy?: (fn: () => unknown) => unknown;
}

/** The file of the tfjs-core copy that made `engine` (the class of its environment). */
function engineFile(engine: EngineLike): string {
  if (engine.ENV && typeof engine.ENV.get === 'function') return locate(() => engine.ENV?.get?.('RS_CORE_PROBE_UNKNOWN_FLAG'));
  if (typeof engine.tidy === 'function') return locate(() => engine.tidy?.(() => new Error().stack));
  return 'unknown location';
}

/** The platform our tfjs-core copy installed when it loaded (`node` or `browser`). */
const ownPlatform: unknown = (tf.env() as unknown as { platform?: unknown }).platform;

function duplicate(kind: string, first: string, second: string, details: Record<string, unknown>): RsError {
  return new RsError(
    'DUPLICATE_INSTANCE',
    `Two copies of ${kind} are loaded in this process:\n  1. ${first}\n  2. ${second}\n` +
      'Each copy has its own registries (and tfjs its own tensors), so models, tensors and backends of one are invisible to the other. ' +
      FIX,
    details,
  );
}

/** What is wrong with the tfjs-core engine, if anything. */
function tfjsProblem(): RsError | undefined {
  const ours = tf.engine() as unknown as EngineLike;
  const global = tfjsGlobal()._tfengine as EngineLike | undefined;
  if (global !== undefined && global !== ours) {
    // Another copy of tfjs-core made its own engine after ours did.
    return duplicate('@tensorflow/tfjs-core (two engines)', ourTfjs(), engineFile(global), { package: '@tensorflow/tfjs-core', reason: 'engine' });
  }
  if (ours.ENV && ours.ENV.constructor !== tf.Environment) {
    // The engine was made by another copy of tfjs-core that loaded before ours.
    return duplicate('@tensorflow/tfjs-core', engineFile(ours), ourTfjs(), { package: '@tensorflow/tfjs-core', reason: 'environment' });
  }
  const platform = (tf.env() as unknown as { platform?: { constructor: { name: string } } }).platform;
  const mine = ownPlatform as { constructor: { name: string } } | undefined;
  if (platform && mine && platform !== mine && platform.constructor !== mine.constructor && platform.constructor.name === mine.constructor.name) {
    // A second copy of tfjs-core loaded after ours and set its own platform over ours
    // ("Platform node has already been set").
    const theirs = locate(() => (platform as unknown as { encode: (text: string, encoding: string) => unknown }).encode('', 'rs-core-probe'));
    return duplicate('@tensorflow/tfjs-core', ourTfjs(), theirs, { package: '@tensorflow/tfjs-core', reason: 'platform' });
  }
  return undefined;
}

/**
 * Throws DUPLICATE_INSTANCE when this process has loaded two copies of @rs/core or two
 * TensorFlow.js engines (two copies of @tensorflow/tfjs-core); the message names both copies and
 * how to keep one. `Model.create`, loading a model and installing or choosing a backend run this
 * check; call it yourself at start-up to fail early.
 *
 * @example
 * import { checkSingleInstance } from '@rs/core';
 * checkSingleInstance(); // throws RsError DUPLICATE_INSTANCE naming both paths
 */
export function checkSingleInstance(): void {
  const list = registry();
  if (list.length > 1) {
    // Name this copy and another one, in load order.
    const mine = list.findIndex((entry) => entry.key === thisCopy.key);
    const other = list.findIndex((entry) => entry.key !== thisCopy.key);
    const [first, second] = mine >= 0 && mine < other ? [list[mine], list[other]] : [list[other], list[mine >= 0 ? mine : other === 0 ? 1 : 0]];
    throw duplicate('@rs/core', describe(first), describe(second), {
      package: '@rs/core',
      paths: list.map((entry) => entry.path),
      versions: list.map((entry) => entry.version),
    });
  }
  const problem = tfjsProblem();
  if (problem) throw problem;
}

/**
 * Throws NO_BACKEND (instead of tfjs' "No backend found in registry") when no TensorFlow.js
 * backend is registered. `what` names the operation for the message.
 */
export function requireBackend(what: string): void {
  const engine = tf.engine() as unknown as { backendInstance?: unknown; backendNames: () => string[] };
  if (engine.backendInstance != null) return;
  if (engine.backendNames().length === 0) {
    throw new RsError(
      'NO_BACKEND',
      `${what} needs a TensorFlow.js backend and none is installed. Install one before using models: ` +
        "import { install } from '@rs/backend-wasm'; await install(); (or '@rs/backend-cpu', the reference backend).",
      { operation: what },
    );
  }
}
