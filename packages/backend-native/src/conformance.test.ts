import { describe, it, expect, beforeAll } from 'vitest';
import { conformanceCases, checkConformance } from '@rs/core/testing';
import { install as installCpu } from '@rs/backend-cpu';
import { install } from './index';

beforeAll(async () => {
  await installCpu({ activate: false });
  await install({ threads: 2 });
});

// Every built-in op, forward and gradients, against the reference cpu backend: no exclusions.
describe('conformance: native against cpu (rtol 1e-4)', () => {
  for (const c of conformanceCases()) {
    it(c.name, () => {
      const result = checkConformance(c, { backend: 'native', reference: 'cpu' });
      expect(result.ok, result.report).toBe(true);
    });
  }
});
