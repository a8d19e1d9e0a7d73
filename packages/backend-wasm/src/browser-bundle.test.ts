import { describe, it, expect } from 'vitest';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

describe('browser bundle', () => {
  it('bundles for the browser with Node modules reached only through dynamic imports', async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL('./index.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['@rs/source'],
      // What a browser bundler does with Node built-ins: leave them out (they are never loaded
      // in a browser because the Node-only branch is not taken there).
      external: ['node:*'],
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0].text;
    // No static import or require of a Node module: only dynamic `import("node:...")`.
    expect(code).not.toMatch(/^import .* from "node:/m);
    expect(code).not.toMatch(/require\("node:/);
    expect(code).toMatch(/import\("node:os"\)/);
    // The stock browser loader of tfjs-backend-wasm is part of the bundle.
    expect(code).toContain('tfjs-backend-wasm-simd.wasm');
  });
});
