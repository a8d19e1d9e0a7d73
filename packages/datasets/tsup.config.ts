import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ["src/index.ts"],
  format: ['esm', 'cjs'],
  target: 'es2022',
  // Node only: the data sets are read from dependencies with node:fs.
  platform: 'node',
  // The CJS build has no import.meta.url; the shim derives it from __filename.
  shims: true,
  dts: false,
  sourcemap: true,
  clean: false,
  splitting: false,
  outDir: 'dist',
});
