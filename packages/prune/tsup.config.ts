import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ["src/index.ts"],
  format: ['esm', 'cjs'],
  target: 'es2022',
  platform: 'neutral',
  dts: false,
  sourcemap: true,
  clean: false,
  splitting: false,
  outDir: 'dist',
  // Keep every package external except tfjs' gradient registrations, which plain Node cannot
  // import from its deep path (see shared/notes/tensorflow-js.md); bundling them inlines it.
  noExternal: [/register_all_gradients/],
});
