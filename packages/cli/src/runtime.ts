import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { createOpRegistry, isRsError, load, save, tf, useBackend, RsError, type Model, type OpRegistry } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { register as registerMoe } from '@rs/moe';
import { register as registerNas } from '@rs/nas';
import { register as registerProgressive } from '@rs/progressive';
import { register as registerDynamic } from '@rs/dynamic';
import { register as registerOnline } from '@rs/online';
import { importOnnx, registerImportOps } from '@rs/onnx';
import { CliError, usage } from './errors';
import { choice, number } from './options';

export const BACKENDS = ['wasm', 'native', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/**
 * Installs and activates a backend. The cpu backend is always installed (it is the reference
 * and the fallback of tfjs); wasm or native only when asked, with `threads` threads (default:
 * all cores). Native throws RsError NO_BACKEND naming what is missing where it was not built.
 */
export async function setupBackend(name: string, threadsText?: string): Promise<BackendName> {
  const backend = choice('--backend', name, BACKENDS);
  const threads = number('--threads', threadsText, { integer: true, min: 1 }, true);
  await installCpu({ activate: false });
  if (backend === 'wasm') {
    const { install } = await import('@rs/backend-wasm');
    await install({ activate: false, threads });
  } else if (backend === 'native') {
    const { install } = await import('@rs/backend-native');
    await install({ activate: false, threads });
  }
  await useBackend(backend);
  return backend;
}

/** Resolves `path` against the run's working directory. */
export function resolvePath(cwd: string, path: string): string {
  return isAbsolute(path) ? path : resolve(cwd, path);
}

/**
 * The op registry of every technique package (`moe`, `nas.mixed`/`nas.zero`, `learnedScale`, and
 * the extensions they and @rs/dynamic provide) plus plugin modules named with --plugin. A plugin module exports `register(registry)`, a
 * default function, or exactly one `register*` function (e.g. `registerGlu`).
 */
export async function createRegistry(cwd: string, plugins: readonly string[] = []): Promise<OpRegistry> {
  const registry = createOpRegistry();
  // Each technique package's register(registry): its ops and what it provides (ONNX lowerings, report sections).
  for (const register of [registerMoe, registerNas, registerProgressive, registerDynamic, registerOnline]) register(registry);
  // The ops imported ONNX models may use (onnx.pad2d, onnx.depthwiseConv2d, ...), so a saved imported model loads.
  registerImportOps(registry);
  for (const spec of plugins) {
    let url: string;
    if (spec.startsWith('.') || isAbsolute(spec)) {
      const path = resolvePath(cwd, spec);
      if (!existsSync(path)) throw new CliError('FILE_NOT_FOUND', `Plugin module ${spec} does not exist (resolved to ${path}).`, { path });
      url = pathToFileURL(path).href;
    } else {
      try {
        url = pathToFileURL(createRequire(resolve(cwd, 'package.json')).resolve(spec)).href;
      } catch {
        throw new CliError('MISSING_PACKAGE', `Cannot find plugin package '${spec}' from ${cwd}; install it or pass a path to its module.`, { plugin: spec });
      }
    }
    const module = (await import(url)) as Record<string, unknown>;
    const candidates = Object.entries(module).filter(([name, value]) => typeof value === 'function' && /^register/.test(name));
    const register =
      typeof module.register === 'function'
        ? module.register
        : typeof module.default === 'function'
          ? module.default
          : candidates.length === 1
            ? candidates[0][1]
            : undefined;
    if (typeof register !== 'function') {
      throw usage(
        `Plugin '${spec}' must export register(registry), a default function, or exactly one register* function; it exports ${Object.keys(module).join(', ') || 'nothing'}.`,
        { plugin: spec },
      );
    }
    (register as (registry: OpRegistry) => unknown)(registry);
  }
  return registry;
}

/** Checks that `path` is an existing file, with a clear error otherwise. */
export function checkFile(path: string, what: string): void {
  if (!existsSync(path)) throw new CliError('FILE_NOT_FOUND', `${what} ${path} does not exist.`, { path });
  if (!statSync(path).isFile()) throw new CliError('NOT_A_FILE', `${what} ${path} is not a file.`, { path });
}

/** Whether `path` names an ONNX file (read with `importOnnx` instead of `load`). */
export function isOnnxPath(path: string): boolean {
  return path.toLowerCase().endsWith('.onnx');
}

/**
 * Loads a saved model with the full registry; an unknown op says how to register it. A `.onnx`
 * file is imported (`importOnnx` of @rs/onnx; `fuseBatchNorm` folds BatchNormalization into
 * the convolutions).
 */
export async function loadModel(cwd: string, path: string, plugins: readonly string[] = [], options: { fuseBatchNorm?: boolean } = {}): Promise<Model> {
  const full = resolvePath(cwd, path);
  checkFile(full, 'Model file');
  const registry = await createRegistry(cwd, plugins);
  if (isOnnxPath(full)) return importOnnx(new Uint8Array(readFileSync(full)), { registry, fuseBatchNorm: options.fuseBatchNorm });
  try {
    return await load(full, { registry });
  } catch (error) {
    if (isRsError(error, 'UNKNOWN_OP')) {
      throw new RsError('UNKNOWN_OP', `${path} uses op '${String(error.details.op)}', which no installed technique registers: pass --plugin <module> with the plugin that defines it.`, error.details);
    }
    throw error;
  }
}

/**
 * Checks where an output file goes, before any work: its directory must exist (the CLI never
 * creates directories, so a typo in a path cannot scatter new folders) and the path must not be
 * a directory. A usage error (exit 2) naming `flag` otherwise. Returns the resolved path.
 */
export function checkOutputPath(cwd: string, path: string, flag = '--out'): string {
  const full = resolvePath(cwd, path);
  const dir = dirname(full);
  if (!existsSync(dir)) throw usage(`${flag} ${path}: the directory ${dir} does not exist; create it first (rs does not create directories).`, { flag, path, directory: dir });
  if (!statSync(dir).isDirectory()) throw usage(`${flag} ${path}: ${dir} is not a directory.`, { flag, path, directory: dir });
  if (existsSync(full) && statSync(full).isDirectory()) throw usage(`${flag} ${path} is a directory; give a file name.`, { flag, path });
  return full;
}

/** Saves atomically into an existing directory (see {@link checkOutputPath}). */
export async function saveModel(cwd: string, model: Model, path: string, flag = '--out'): Promise<string> {
  const full = checkOutputPath(cwd, path, flag);
  await save(model, full);
  return full;
}

/** Live tensors now (for leak checks in tests and --debug). */
export function liveTensors(): number {
  return tf.memory().numTensors;
}
