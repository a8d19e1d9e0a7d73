// Lint: TypeScript rules plus the dependency rule (docs/architecture.md), enforced on imports:
// technique packages import only @rs/core; only @rs/core and backend packages import @tensorflow/*;
// no package reaches into another's files.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { URL } from 'node:url';

// Technique packages declare themselves in their package.json: "rs": { "kind": "technique" }.
const packagesDir = new URL('./packages/', import.meta.url);
const techniques = readdirSync(packagesDir).filter((dir) => {
  const file = new URL(`${dir}/package.json`, packagesDir);
  return existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).rs?.kind === 'technique';
});
const noDeepImports = { group: ['@rs/*/src', '@rs/*/src/*', '@rs/*/dist/*', '../../*/src/*'], message: 'Import another package through its public entry, never its files.' };
const noTensorflow = { group: ['@tensorflow/*'], message: 'Only @rs/core and backend packages import TensorFlow.js; use the `tf` re-exported by @rs/core.' };

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.config.ts', 'examples/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'error',
      'no-restricted-imports': ['error', { patterns: [noDeepImports] }],
    },
  },
  {
    files: techniques.map((t) => `packages/${t}/src/**/*.ts`),
    // Tests may use a backend and data sets (dev dependencies); the published code may not.
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noDeepImports,
            noTensorflow,
            { regex: '^@rs/(?!core(/extend|/testing)?$)', message: 'Technique packages depend on @rs/core only (docs/architecture.md).' },
          ],
        },
      ],
    },
  },
  {
    files: [...techniques.map((t) => `packages/${t}/src/**/*.test.ts`), 'packages/datasets/src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noDeepImports, noTensorflow] }] },
  },
);
