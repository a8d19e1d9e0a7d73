import { defineConfig, type Options } from 'tsup';

/**
 * The build of every package: ESM + CJS with source maps (declarations come from `tsc -b`).
 * Everything stays external except tfjs-core's gradient registrations, which plain Node cannot
 * import from their deep path (shared/notes/tensorflow-js.md); bundling inlines them.
 */
export function packageBuild(options: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    target: 'es2022',
    platform: 'neutral',
    dts: false,
    sourcemap: true,
    clean: false,
    splitting: false,
    outDir: 'dist',
    noExternal: [/register_all_gradients/],
    ...options,
  });
}
