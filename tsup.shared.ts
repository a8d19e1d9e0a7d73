import { existsSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { defineConfig, type Options } from 'tsup';

/**
 * The build of every package (docs/packaging.md): ESM + CJS, code shared between entries in
 * chunks (`splitting`, also for CJS), no source maps. Declarations: `tsc -b` runs first and
 * writes one .d.ts per source file to dist/types (project references and typecheck use them);
 * tsup then bundles them from there per entry into dist/<entry>.d.ts (ESM) and
 * dist/<entry>.d.cts (CJS), with shared declaration chunks, so that every relative import in
 * a published declaration file carries its extension. dist/types is not published.
 * Everything stays external except tfjs-core's gradient registrations, which plain Node cannot
 * import from their deep path; bundling inlines them.
 *
 * Before building, everything in dist except dist/types is removed (chunk names carry hashes,
 * so old chunks would otherwise pile up and be published); tsup's own `clean` would keep every
 * old .d.ts and remove tsc's build info.
 */
export function packageBuild(options: Options = {}) {
  if (existsSync('dist')) {
    for (const name of readdirSync('dist')) if (name !== 'types') rmSync(join('dist', name), { recursive: true, force: true });
  }
  const entry = (options.entry ?? ['src/index.ts']) as string[];
  const dtsEntry = Object.fromEntries(
    entry.map((file) => {
      const name = basename(file).replace(/\.ts$/, '');
      return [name, `dist/types/${name}.d.ts`];
    }),
  );
  return defineConfig({
    format: ['esm', 'cjs'],
    target: 'es2022',
    platform: 'neutral',
    dts: { entry: dtsEntry, compilerOptions: { composite: false, incremental: false } },
    sourcemap: false,
    clean: false,
    splitting: true,
    outDir: 'dist',
    noExternal: [/register_all_gradients/],
    ...options,
    entry,
  });
}
