import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

// The inference-only app (app/). The .wasm binaries are not bundled (serve the folder of the
// installed @tensorflow/tfjs-backend-wasm's dist/*.wasm as wasm/, see docs/deploy.md); the
// test's server does so.
export default defineConfig({
  root: fileURLToPath(new URL('./app', import.meta.url)),
  base: './',
  logLevel: 'warn',
  resolve: { conditions: ['@rs/source', 'module', 'browser', 'development|production'] },
  build: {
    target: 'es2022',
    // Node built-ins are reached only through dynamic imports on Node-only paths.
    rollupOptions: { external: [/^node:/] },
  },
});
