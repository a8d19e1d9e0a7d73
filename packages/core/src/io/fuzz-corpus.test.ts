// Regression tests of the loadFromBuffer fuzzer (`pnpm fuzz`, scripts/fuzz-load.mjs): every
// crasher it found (fuzz-corpus/*.bin) must now be refused with a typed IO_* error, and a fixed,
// deterministic sample of 300 inputs from the same mutator must each load (then apply and
// dispose cleanly) or be refused with IO_* / UNKNOWN_OP.
import { describe, it, expect, beforeAll } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useCpu } from '../test-setup';
import { createRng } from '../rng';
import { applyMutationPlan, drawMutationPlan, fuzzSeedFiles, tryLoad } from '../testing/fuzz-mutations';

beforeAll(useCpu);

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'fuzz-corpus');
const crashers = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bin')).sort() : [];

describe('loadFromBuffer fuzz regressions', () => {
  it.each(crashers)('crasher %s is refused with a typed IO_ error', (file) => {
    const result = tryLoad(new Uint8Array(readFileSync(join(dir, file))));
    expect(result).toEqual({ outcome: 'refused', code: expect.stringMatching(/^IO_/) });
  });

  it('a fixed sample of 300 mutated files each load cleanly or are refused with IO_* / UNKNOWN_OP', () => {
    const corpus = fuzzSeedFiles();
    for (const file of corpus) expect(tryLoad(file)).toEqual({ outcome: 'loaded', applied: true });
    const rng = createRng(20261204);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const plan = drawMutationPlan(rng);
      const result = tryLoad(applyMutationPlan(corpus, plan));
      if (result.outcome === 'crash') throw new Error(`input ${i} crashed at ${result.stage}: ${String(result.error)}\nplan: ${JSON.stringify(plan)}`);
      const key = result.outcome === 'loaded' ? 'loaded' : result.code;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    // The sample reaches past the checksum: some files load, some fail graph/table checks.
    expect(outcomes.get('loaded') ?? 0).toBeGreaterThan(0);
    expect(outcomes.get('IO_MISMATCH') ?? 0).toBeGreaterThan(0);
    expect(outcomes.get('IO_CORRUPT') ?? 0).toBeGreaterThan(0);
  });
});
