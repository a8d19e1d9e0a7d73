// Examples and benchmarks are plain scripts that no test imports, so a named import that no
// longer exists (a helper renamed, an export dropped) only shows when someone runs them. This
// check imports every module they import by name (the repo's helpers and the @rs packages,
// after the build) and fails when a named import is missing. Run by `npm test`.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMPORT = /import\s*\{([^}]*)\}\s*from\s*'([^']+)'/g;

function scripts(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'out' ? [] : scripts(path);
    return entry.name.endsWith('.mjs') ? [path] : [];
  });
}

/** The ESM entry of an @rs package (or subpath) as the importing script's node_modules holds it. */
function resolvePackage(file, specifier) {
  const [scope, name, ...rest] = specifier.split('/');
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const pkg = join(dir, 'node_modules', scope, name);
    if (existsSync(join(pkg, 'package.json'))) {
      const entry = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')).exports?.[rest.length ? `./${rest.join('/')}` : '.'];
      // `import` is a path, or conditions `{ types, default }`.
      const target = typeof entry?.import === 'string' ? entry.import : entry?.import?.default;
      if (typeof target !== 'string') throw new Error(`${specifier} has no ESM export in ${relative(root, pkg)}/package.json`);
      return pathToFileURL(join(pkg, target)).href;
    }
    if (dir === dirname(dir)) throw new Error(`${specifier} is not installed for ${relative(root, file)}`);
  }
}

const problems = [];
let checked = 0;
const modules = new Map();
for (const file of [...scripts(join(root, 'examples')), ...scripts(join(root, 'bench'))]) {
  const source = readFileSync(file, 'utf8');
  for (const [, list, specifier] of source.matchAll(IMPORT)) {
    if (!specifier.startsWith('.') && !specifier.startsWith('@rs/')) continue;
    const url = specifier.startsWith('.') ? pathToFileURL(resolve(dirname(file), specifier)).href : resolvePackage(file, specifier);
    if (!modules.has(url)) modules.set(url, await import(url).catch((error) => error));
    const namespace = modules.get(url);
    const where = `${relative(root, file)}: '${specifier}'`;
    if (namespace instanceof Error) {
      problems.push(`${where} cannot be imported: ${namespace.message.split('\n')[0]}`);
      continue;
    }
    for (const name of list.split(',').map((s) => s.trim().split(/\s+as\s+/)[0]).filter(Boolean)) {
      checked += 1;
      if (!(name in namespace)) problems.push(`${where} has no export named '${name}'`);
    }
  }
}
if (problems.length > 0) {
  console.error(`check-examples: ${problems.length} broken import(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-examples: ${checked} named imports of examples and benchmarks resolve`);
