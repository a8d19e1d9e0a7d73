// model.edit's transaction: the commit (runTransaction) and the public edit API. The primitives
// live by concern in unit-edits.ts, node-edits.ts and param-edits.ts, over the draft state of
// draft.ts kept consistent by refresh.ts; the Transaction class is in transaction-class.ts.
import type { Tensor } from '../tf';
import { RsError } from '../errors';
import { paramKey } from '../ir/types';
import type { ValidatedGraph } from '../ir/validate';
import type { ModelCounts } from '../count';
import type { Model, ModelState } from '../model';
import type { JournalEntry } from './journal';
import { Transaction } from './transaction-class';

export { Transaction } from './transaction-class';
export type { InsertUnitsOptions } from './unit-edits';
export type { InsertNodeOptions } from './node-edits';

/** Who edits and why; recorded in the journal. */
export interface EditMeta {
  technique?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

function tensorsOf(state: Pick<ModelState, 'params' | 'slots'>): Set<Tensor> {
  const out = new Set<Tensor>();
  for (const entry of state.params.values()) {
    out.add(entry.value);
    if (entry.mask) out.add(entry.mask);
  }
  for (const slots of state.slots.values()) for (const t of slots.values()) out.add(t);
  return out;
}

/** A function that is declared `async` (its body runs after the transaction has ended). */
function isAsyncFunction(fn: unknown): boolean {
  const name = (fn as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name === 'AsyncFunction' || name === 'AsyncGeneratorFunction';
}

/**
 * @internal Runs `body` on a draft; commits atomically or restores everything. `derive` computes
 * what the model needs from the new state (plan, counts) before anything old is released, so a
 * failure there also leaves the model exactly as it was.
 */
export function runTransaction<D>(
  model: Model,
  body: (tx: Transaction) => void,
  meta: EditMeta,
  before: ModelCounts,
  derive: (state: Omit<ModelState, 'journal' | 'optimizerSteps'>, validated: ValidatedGraph) => D,
): { state: ModelState; validated: ValidatedGraph; derived: D; finishEntry: (after: ModelCounts) => JournalEntry } {
  if (typeof body !== 'function') throw new RsError('INVALID_ARGUMENT', `model.edit takes a callback (tx) => { ... }, got ${body === null ? 'null' : typeof body}.`);
  if (isAsyncFunction(body)) {
    // Refused before it runs: an async callback would keep editing after the commit.
    throw new RsError('INVALID_EDIT', 'The edit callback must be synchronous; it is declared async. Do any awaiting before model.edit, then edit synchronously.');
  }
  const old = model.internalState;
  const tx = new Transaction(model);
  let finished: ReturnType<Transaction['finish']>;
  let derived: D;
  try {
    const result: unknown = body(tx);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      // Whatever the promise does later ends in TRANSACTION_CLOSED: observe it so that it can
      // never surface as an unhandled rejection.
      (result as Promise<unknown>).then(undefined, () => undefined);
      throw new RsError('INVALID_EDIT', 'The edit callback must be synchronous (it returned a promise). Do any awaiting before model.edit, then edit synchronously.');
    }
    finished = tx.finish();
    derived = derive(finished.state, finished.validated);
  } catch (error) {
    tx.closed = true;
    tx.abort();
    throw error;
  }
  tx.closed = true;
  const keep = tensorsOf(finished.state);
  for (const t of tensorsOf(old)) if (!keep.has(t)) t.dispose();
  for (const t of finished.created) if (!keep.has(t)) t.dispose();
  // Step counts follow their parameters: a parameter that is gone takes its count with it.
  const optimizerSteps = new Map([...old.optimizerSteps].filter(([key]) => finished.state.params.has(key)));
  const state: ModelState = { ...finished.state, journal: old.journal, optimizerSteps };
  return {
    state,
    validated: finished.validated,
    derived,
    finishEntry: (after) => ({
      seq: old.journal.length + 1,
      time: new Date().toISOString(),
      technique: meta.technique ?? 'manual',
      reason: meta.reason ?? '',
      changes: tx.changes,
      params: { before: before.params, after: after.params },
      nonzeroParams: { before: before.nonzeroParams, after: after.nonzeroParams },
      flops: { before: before.flops, after: after.flops },
      ...(meta.details ? { details: meta.details } : {}),
    }),
  };
}

export { paramKey };
