// Package-level dependency rule (docs/architecture.md), checked on package.json files:
// technique packages depend on @rs/core only and never on @tensorflow/*; only core and backends
// depend on @tensorflow/*; the workspace dependency graph has no cycle. A technique package is one
// whose package.json says "rs": { "kind": "technique" }.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = readdirSync(join(root, 'packages')).filter((d) => existsSync(join(root, 'packages', d, 'package.json')));
const packages = new Map();
const problems = [];
const techniques = [];
for (const dir of dirs) {
  const pkg = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
  if (pkg.rs?.kind === 'technique') techniques.push(dir);
  const runtime = { ...pkg.dependencies, ...pkg.peerDependencies };
  const all = { ...runtime, ...pkg.devDependencies };
  packages.set(pkg.name, Object.keys(all).filter((d) => d.startsWith('@rs/')));
  for (const dep of Object.keys(runtime)) {
    if (dep.startsWith('@tensorflow/') && !(dir === 'core' || dir.startsWith('backend-'))) {
      problems.push(`${pkg.name} depends on ${dep}: only @rs/core and backend packages may use TensorFlow.js.`);
    }
    if (pkg.rs?.kind === 'technique' && dep.startsWith('@rs/') && dep !== '@rs/core') {
      problems.push(`${pkg.name} depends on ${dep}: technique packages depend on @rs/core only.`);
    }
  }
}
const visiting = new Set();
const done = new Set();
const visit = (name, path) => {
  if (done.has(name)) return;
  if (visiting.has(name)) {
    problems.push(`dependency cycle: ${[...path, name].join(' -> ')}`);
    return;
  }
  visiting.add(name);
  for (const dep of packages.get(name) ?? []) visit(dep, [...path, name]);
  visiting.delete(name);
  done.add(name);
};
for (const name of packages.keys()) visit(name, []);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
if (techniques.length === 0) {
  console.error('no package declares "rs": { "kind": "technique" } in its package.json: the technique rule would check nothing.');
  process.exit(1);
}
console.log(`dependency rule: ${packages.size} packages checked (techniques: ${techniques.join(', ')}), no violation, no cycle`);
