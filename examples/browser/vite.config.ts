import { defineConfig, type Plugin } from 'vite';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The binaries tfjs-backend-wasm fetches at start-up (it picks one by SIMD/threads support). */
const WASM_BINARIES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/** The folder of those binaries in the tfjs-backend-wasm that @rs/backend-wasm itself uses. */
function wasmFolder(): string {
  const backend = realpathSync(join(here, 'node_modules/@rs/backend-wasm'));
  const stock = createRequire(join(backend, 'package.json')).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return join(dirname(stock), 'dist');
}

/**
 * The model the page loads by default (`./model.rsm`): public/model.rsm when present (written by
 * scripts/make-model.mjs), else the main job's examples/out/lenet-pruned-exit.rsm (`npm run main`).
 */
export function defaultModel(): string | undefined {
  return [join(here, 'public/model.rsm'), join(here, '../out/lenet-pruned-exit.rsm')].find((file) => existsSync(file));
}

/**
 * What `vite build` (and `vite` at start) prints when there is no model to ship: the built page
 * would fetch model.rsm and find nothing. Undefined when `model` (the default model) exists.
 */
export function missingModelWarning(model: string | undefined = defaultModel()): string | undefined {
  if (model !== undefined) return undefined;
  return (
    'No model to serve as model.rsm: neither examples/browser/public/model.rsm nor examples/out/lenet-pruned-exit.rsm exists, ' +
    'so the page will say "the model file was not found" until one is picked by hand. ' +
    'Run `npm run main` first (it writes examples/out/lenet-pruned-exit.rsm), or `node examples/browser/scripts/make-model.mjs` (public/model.rsm).'
  );
}

/**
 * Serves (dev) and emits (build) the wasm binaries under `wasm/`, where the page's
 * `install({ wasmPaths })` points, and the default model as `model.rsm`.
 */
function rsAssets(): Plugin {
  let isBuild = false;
  return {
    name: 'rs-browser-assets',
    configResolved(config) {
      isBuild = config.command === 'build';
    },
    buildStart() {
      const warning = missingModelWarning();
      if (warning !== undefined) this.warn(warning);
    },
    configureServer(server) {
      server.middlewares.use((request, response, next) => {
        const path = (request.url ?? '').split('?')[0];
        let file: string | undefined;
        let type = 'application/octet-stream';
        if (path.startsWith('/wasm/') && WASM_BINARIES.includes(path.slice('/wasm/'.length))) {
          file = join(wasmFolder(), path.slice('/wasm/'.length));
          type = 'application/wasm';
        } else if (path === '/model.rsm') {
          file = defaultModel();
        }
        if (file === undefined) return next();
        response.setHeader('Content-Type', type);
        response.end(readFileSync(file));
      });
    },
    generateBundle() {
      if (!isBuild) return;
      const folder = wasmFolder();
      for (const name of WASM_BINARIES) this.emitFile({ type: 'asset', fileName: `wasm/${name}`, source: readFileSync(join(folder, name)) });
      // public/model.rsm is copied by vite itself; otherwise the main job's model, when there is one.
      const model = defaultModel();
      if (model !== undefined && !existsSync(join(here, 'public/model.rsm'))) {
        this.emitFile({ type: 'asset', fileName: 'model.rsm', source: readFileSync(model) });
      }
    },
  };
}

export default defineConfig({
  root: here,
  // Relative URLs: the built page works from any folder of any static server.
  base: './',
  // The workspace packages are read from their sources (as the tests do), so the page needs no
  // package build; an application installing @rs/* from npm gets their builds with no setting.
  resolve: { conditions: ['@rs/source', 'module', 'browser', 'development|production'] },
  plugins: [rsAssets()],
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 2048,
    // Node built-ins are reached only through dynamic imports on Node-only paths (the threaded
    // Node loader of @rs/backend-wasm, save/load of paths in @rs/core): never in a browser.
    rollupOptions: { external: [/^node:/] },
  },
});
