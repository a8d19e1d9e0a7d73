// Module hooks (node:module register): resolve extensionless and .js-for-.ts specifiers as the
// sources are written, and strip types from .ts files with esbuild.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    const candidates = specifier.endsWith('.js') ? [`${specifier.slice(0, -3)}.ts`] : [`${specifier}.ts`, `${specifier}.js`, `${specifier}/index.ts`];
    for (const candidate of candidates) {
      try {
        return await next(candidate, context);
      } catch {
        // try the next one
      }
    }
    throw error;
  }
}

export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const source = await readFile(fileURLToPath(url), 'utf8');
  const { code } = await transform(source, { loader: 'ts', format: 'esm', target: 'es2022', sourcefile: fileURLToPath(url) });
  return { format: 'module', source: code, shortCircuit: true };
}
