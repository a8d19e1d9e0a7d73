// Where a browser fetches the .wasm binaries: checked here for `install` (./index.ts, which
// hands them to the stock loader) and the inference runtime (./runtime.ts, which loads them).

/** File names of the three binaries of tfjs-backend-wasm (plain, SIMD, threaded SIMD). */
export type WasmBinaryName = 'tfjs-backend-wasm.wasm' | 'tfjs-backend-wasm-simd.wasm' | 'tfjs-backend-wasm-threaded-simd.wasm';

export const WASM_BINARIES: readonly WasmBinaryName[] = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/**
 * `wasmPaths` checked: a folder URL (a missing final `/` added) or one URL per binary. Throws
 * INVALID_ARGUMENT for an empty folder or a map that lacks a binary.
 */
export function checkWasmPaths(paths: string | Partial<Record<WasmBinaryName, string>>): string | Record<WasmBinaryName, string> {
  if (typeof paths === 'string') {
    if (paths === '') throw new Error('[INVALID_ARGUMENT] wasmPaths is an empty string; give the folder the .wasm files are served from, ending in "/".');
    // tfjs appends the file name to the prefix as is: a missing slash would fetch 'wasmtfjs-...'.
    return paths.endsWith('/') ? paths : `${paths}/`;
  }
  const missing = WASM_BINARIES.filter((name) => typeof paths[name] !== 'string' || paths[name] === '');
  if (missing.length > 0) {
    throw new Error(`[INVALID_ARGUMENT] wasmPaths has no URL for ${missing.join(', ')}; give one URL per binary or a folder URL.`);
  }
  return paths as Record<WasmBinaryName, string>;
}
