import { defineConfig } from 'tsup';

// ESM and type declarations; @rs/core stays external (it is a peer dependency).
export default defineConfig({
  entry: ['src/index.ts', 'src/onnx.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  external: ['@rs/core'],
});
