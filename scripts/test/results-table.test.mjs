// docs/results.md's table is generated from bench/results/*.json: it must match the files, every
// row must rest on at least 3 seeds, and a missing or changed result file must be caught.
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CLAIMS } from '../results-claims.mjs';
import { DOC, END, MIN_SEEDS, RESULTS_DIR, START, check, generate } from '../results-table.mjs';

/** A copy of bench/results holding only the files the claims cite. */
function copyResults() {
  const dir = mkdtempSync(join(tmpdir(), 'rs-results-'));
  for (const file of new Set(CLAIMS.map((c) => c.file))) cpSync(join(RESULTS_DIR, file), join(dir, file));
  return dir;
}

const tableRows = (doc) => doc.slice(doc.indexOf(START), doc.indexOf(END)).split('\n').filter((l) => l.startsWith('| **'));

describe('docs/results.md', () => {
  it('agrees with the result files it cites', () => {
    expect(check()).toEqual([]);
  });

  it('has a row per claim with at least 3 seeds, and every row names its result file and seed count', () => {
    const doc = readFileSync(DOC, 'utf8');
    const rows = tableRows(doc);
    expect(rows.length).toBeGreaterThan(5);
    for (const row of rows) {
      const cells = row.split(' | ');
      expect(Number(cells[3])).toBeGreaterThanOrEqual(MIN_SEEDS);
      const file = /`bench\/results\/([^`]+)`/.exec(cells[4])?.[1];
      expect(file && CLAIMS.some((c) => c.file === file)).toBe(true);
    }
    // A claim with fewer seeds is listed below the table, never in it.
    for (const c of CLAIMS) {
      const record = JSON.parse(readFileSync(join(RESULTS_DIR, c.file), 'utf8'));
      expect(rows.some((r) => r.startsWith(`| **${c.id}**:`))).toBe(c.seeds(record) >= MIN_SEEDS && Boolean(c.ours));
    }
  });

  it('fails when a cited result file is missing', () => {
    const dir = copyResults();
    try {
      unlinkSync(join(dir, 'grow-from-teacher.json'));
      const problems = check(readFileSync(DOC, 'utf8'), dir);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/grow-from-teacher\.json, which does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails when a result file disagrees with the table', () => {
    const dir = copyResults();
    try {
      const path = join(dir, 'grow-anytime.json');
      const record = JSON.parse(readFileSync(path, 'utf8'));
      record.details.per_arm.grown.test_loss.values[0] += 0.5;
      record.details.per_arm.grown.test_loss.mean += 0.1;
      writeFileSync(path, JSON.stringify(record));
      const problems = check(readFileSync(DOC, 'utf8'), dir);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/disagrees with bench\/results.*grow-anytime/);
      // And a file whose seeds drop below 3 leaves the table.
      const moe = join(dir, 'moe-moby-dick-3000.json');
      const m = JSON.parse(readFileSync(moe, 'utf8'));
      m.details.runs = m.details.runs.filter((r) => r.seed === 0);
      writeFileSync(moe, JSON.stringify(m));
      expect(generate(dir)).toMatch(/\*\*switch-lm-3000\*\*: [^\n]*holds 1 seed\./);
      // A figure the file no longer holds is an error, never a NaN in the table.
      const gft = join(dir, 'grow-from-teacher.json');
      const g = JSON.parse(readFileSync(gft, 'utf8'));
      g.details.mnist.net2net_over_random_large.values[0] = 'missing';
      writeFileSync(gft, JSON.stringify(g));
      expect(() => generate(dir)).toThrow(/grow-from-teacher-mnist reads a missing figure/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Every result file is named somewhere outside bench/results (a document, a benchmark or a
// script): by its file name, its name without `.json` (`pnpm bench gemm`), or a documented
// wildcard with a prefix, such as `gvs-explore-cosine-*.json`. A file nobody cites is stale: cite or delete it.
describe('bench/results', () => {
  const root = dirname(dirname(RESULTS_DIR));
  const texts = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      if (['node_modules', '.git', 'dist', 'results', '.turbo', '.packed'].includes(name) || name.startsWith('.vitest')) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(md|mjs|ts|py)$/.test(name)) texts.push(readFileSync(path, 'utf8'));
    }
  };
  walk(root);
  const corpus = texts.join('\n');
  const wildcards = [...corpus.matchAll(/([\w.-]*)\*([\w.-]*)\.json/g)].filter(([, a]) => a.length >= 3).map(([, a, b]) => new RegExp(`^${a.replace(/[.-]/g, '\\$&')}[\\w.-]*${b.replace(/[.-]/g, '\\$&')}\\.json$`));

  it('holds no result file that nothing cites', () => {
    const uncited = readdirSync(RESULTS_DIR)
      .filter((f) => f.endsWith('.json'))
      .filter((f) => !corpus.includes(f) && !new RegExp(`\\b${f.replace(/\.json$/, '').replace(/[.-]/g, '\\$&')}\\b(?![\\w-])`).test(corpus) && !wildcards.some((w) => w.test(f)));
    expect(uncited).toEqual([]);
  });
});
