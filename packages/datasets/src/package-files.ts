import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DatasetError } from './errors.js';

// Data files are located through the dependency's package.json rather than its main module:
// mnist's main module draws random sets with Math.random, and neither package needs to run.
// `import.meta.url` is shimmed by tsup in the CJS build (shims: true).

/** Absolute directory of an installed dependency. */
export function packageDirectory(packageName: string): string {
  try {
    const require = createRequire(import.meta.url);
    return dirname(require.resolve(`${packageName}/package.json`));
  } catch (cause) {
    throw new DatasetError(
      'DATA_NOT_FOUND',
      `Cannot find the package ${packageName}; it is a dependency of @rs/datasets, reinstall it.`,
      { packageName, cause: String(cause) },
    );
  }
}

/** Version field of an installed dependency's package.json. */
export function packageVersion(packageName: string): string {
  const json = JSON.parse(readPackageFile(packageName, 'package.json')) as { version?: string };
  return json.version ?? 'unknown';
}

/** UTF-8 text of a file inside an installed dependency. */
export function readPackageFile(packageName: string, relativePath: string): string {
  const path = join(packageDirectory(packageName), relativePath);
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new DatasetError(
      'DATA_NOT_FOUND',
      `Cannot read ${relativePath} of ${packageName} at ${path}; reinstall the package.`,
      { packageName, path, cause: String(cause) },
    );
  }
}
