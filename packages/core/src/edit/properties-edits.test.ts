// Property-based tests of structural edits, properties 1-3; the arbitraries, helpers and the
// list of all six properties are in properties.test-util.ts.
import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { validateGraph } from '../ir/validate';
import { saveToBuffer, loadFromBuffer } from '../io/model-io';
import { unitPositions } from './positions';
import { settings, graphSpec, anyEdit, preservingEdit, unitEdit, withFixture, commit } from './properties.test-util';

beforeAll(useCpu);

describe('edit properties (fast-check, 200 runs each)', () => {
  it('after every committed edit the graph validates and the model applies', () => {
    fc.assert(
      fc.property(graphSpec, fc.array(anyEdit, { minLength: 1, maxLength: 6 }), (spec, edits) =>
        withFixture(spec, { norms: true }, (f) => {
          const outShape = f.model.apply(f.x);
          const shape = outShape.shape;
          outShape.dispose();
          for (const edit of edits) {
            const journal = f.model.journal.length;
            commit(f, edit);
            expect(f.model.journal).toHaveLength(journal + 1);
            expect(() => validateGraph(f.model.graph, f.model.registry)).not.toThrow();
            const y = f.model.apply(f.x);
            expect(y.shape).toEqual(shape);
            expect(tf.tidy(() => tf.all(tf.isFinite(y)).dataSync()[0])).toBe(1);
            y.dispose();
            // Every parameter has the shape the validated graph declares.
            for (const [key, spec] of f.model.validated.paramSpecs) expect(f.model.param(key).value.shape, key).toEqual(spec.shape);
          }
        }),
      ),
      settings(),
    );
  });

  it('removing units equals masking their incoming weights and biases (outputs to 1e-5)', () => {
    fc.assert(
      fc.property(graphSpec, fc.array(unitEdit, { maxLength: 3 }), fc.nat(9), fc.array(fc.nat(9), { minLength: 1, maxLength: 4 }), (spec, prefix, pick, indices) =>
        withFixture(spec, { norms: false, activations: ['relu', 'tanh'] }, (f) => {
          for (const edit of prefix) commit(f, edit);
          const groups = f.model.groups().filter((g) => !g.frozen && g.size > 1);
          if (groups.length === 0) return;
          const group = groups[pick % groups.length];
          const units = [...new Set(indices.map((i) => i % group.size))].slice(0, group.size - 1);
          const twin = loadFromBuffer(saveToBuffer(f.model));
          try {
            twin.edit((tx) => {
              for (const member of group.params.filter((p) => p.role === 'out')) {
                const entry = tx.param(member.param);
                const length = entry.value.shape[member.axis];
                const keep = new Float32Array(length).fill(1);
                for (const u of units) for (const p of unitPositions(member, u)) keep[p] = 0;
                const mask = tf.tidy(() => {
                  const line = tf.reshape(tf.tensor1d(keep), entry.value.shape.map((d, a) => (a === member.axis ? length : 1)));
                  return tf.mul(entry.mask ?? tf.onesLike(entry.value), line);
                });
                tx.setMask(member.param, mask);
                mask.dispose();
              }
            });
            f.model.edit((tx) => tx.removeUnits(group.id, units));
            const [masked, removed] = [twin.apply(f.x), f.model.apply(f.x)];
            const diff = maxAbsDiff(masked, removed);
            tf.dispose([masked, removed]);
            expect(diff).toBeLessThanOrEqual(1e-5);
          } finally {
            twin.dispose();
          }
        }),
      ),
      settings(),
    );
  });

  it('inserting units (and permuting, and identity denses) preserves the function without norms (to 1e-5)', () => {
    fc.assert(
      fc.property(graphSpec, fc.array(preservingEdit, { minLength: 1, maxLength: 5 }), (spec, edits) =>
        withFixture(spec, { norms: false }, (f) => {
          const before = f.model.apply(f.x);
          try {
            for (const edit of edits) {
              commit(f, edit);
              const after = f.model.apply(f.x);
              const diff = maxAbsDiff(before, after);
              after.dispose();
              expect(diff, JSON.stringify(edit)).toBeLessThanOrEqual(1e-5);
            }
          } finally {
            before.dispose();
          }
        }),
      ),
      settings(),
    );
  });
});
