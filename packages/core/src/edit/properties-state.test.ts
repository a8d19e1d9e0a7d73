// Property-based tests of structural edits, properties 4-6; the arbitraries, helpers and the
// list of all six properties are in properties.test-util.ts.
import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { isRsError } from '../errors';
import { saveToBuffer, loadFromBuffer } from '../io/model-io';
import { settings, graphSpec, anyEdit, applyEdit, withFixture, commit, addSlots, bytesOf, sameBytes } from './properties.test-util';

beforeAll(useCpu);

describe('edit properties (fast-check, 200 runs each)', () => {
  it('a transaction that throws anywhere leaves the saved bytes and the tensor count identical', () => {
    fc.assert(
      fc.property(
        graphSpec,
        fc.array(anyEdit, { maxLength: 2 }),
        fc.array(anyEdit, { minLength: 1, maxLength: 5 }),
        fc.nat(5),
        fc.boolean(),
        (spec, prefix, edits, throwAt, slots) =>
          withFixture(spec, { norms: true }, (f) => {
            if (slots) addSlots(f.model, spec.seed);
            for (const edit of prefix) commit(f, edit);
            const bytes = bytesOf(f.model);
            const tensors = tf.memory().numTensors;
            const version = f.model.version;
            const at = throwAt % (edits.length + 1);
            const injected = new Error('injected');
            let thrown: unknown;
            try {
              const state = { inserted: [...f.state.inserted], counter: f.state.counter };
              f.model.edit((tx) => {
                edits.forEach((edit, i) => {
                  if (i === at) throw injected;
                  applyEdit(tx, f.model, state, edit);
                });
                if (at === edits.length) throw injected;
              });
            } catch (error) {
              thrown = error;
            }
            // Either the injected error, or a typed error of an edit that does not apply here.
            expect(thrown === injected || isRsError(thrown), String(thrown)).toBe(true);
            expect(tf.memory().numTensors).toBe(tensors);
            expect(f.model.version).toBe(version);
            expect(sameBytes(bytesOf(f.model), bytes), 'saved bytes changed').toBe(true);
            // The model still edits and applies.
            commit(f, edits[0]);
            const y = f.model.apply(f.x);
            y.dispose();
          }),
      ),
      settings(),
    );
  });

  it('save/load/save is byte-identical, and the loaded model computes the same outputs', () => {
    fc.assert(
      fc.property(graphSpec, fc.array(anyEdit, { maxLength: 5 }), fc.boolean(), (spec, edits, slots) =>
        withFixture(spec, { norms: true }, (f) => {
          if (slots) addSlots(f.model, spec.seed);
          for (const edit of edits) commit(f, edit);
          const first = bytesOf(f.model);
          const copy = loadFromBuffer(first);
          try {
            expect(sameBytes(bytesOf(copy), first), 'second save differs').toBe(true);
            const plain = new Uint8Array(saveToBuffer(f.model));
            const plainCopy = loadFromBuffer(plain);
            expect(sameBytes(new Uint8Array(saveToBuffer(plainCopy)), plain), 'second save (no optimizer state) differs').toBe(true);
            plainCopy.dispose();
            const [a, b] = [f.model.apply(f.x), copy.apply(f.x)];
            const diff = maxAbsDiff(a, b);
            tf.dispose([a, b]);
            expect(diff).toBe(0);
          } finally {
            copy.dispose();
          }
        }),
      ),
      settings(),
    );
  });

  it('the live-tensor count returns to its start after each sequence (edits, failed edits, runs, save/load)', () => {
    fc.assert(
      fc.property(graphSpec, fc.array(fc.tuple(anyEdit, fc.constantFrom('commit', 'fail', 'run', 'reload')), { minLength: 1, maxLength: 6 }), (spec, steps) => {
        const start = tf.memory().numTensors;
        withFixture(spec, { norms: true }, (f) => {
          for (const [edit, how] of steps) {
            if (how === 'commit') {
              commit(f, edit);
            } else if (how === 'fail') {
              expect(() =>
                f.model.edit((tx) => {
                  applyEdit(tx, f.model, { inserted: [...f.state.inserted], counter: f.state.counter }, edit);
                  throw new Error('injected');
                }),
              ).toThrow();
            } else if (how === 'run') {
              const run = f.model.run(f.x, { training: true });
              for (const t of run.outputs) t.dispose();
            } else {
              const copy = loadFromBuffer(saveToBuffer(f.model, { includeOptimizerState: true }));
              const y = copy.apply(f.x);
              y.dispose();
              copy.dispose();
            }
          }
        });
        expect(tf.memory().numTensors).toBe(start);
      }),
      settings(),
    );
  });
});
