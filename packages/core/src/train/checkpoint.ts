import { tf, type Tensor } from '../tf';
import type { Model } from '../model';

/** What `checkpoint` returns: put the parameters back as they were, or drop the copies. */
export interface Checkpoint {
  /** Restores the values, optimizer slots and step counts of the checkpointed parameters. */
  restore(): void;
  /** Releases the copies (the model keeps its current state). */
  release(): void;
}

/**
 * Copies the values, optimizer slots and step counts of `keys`, so that a training step made of
 * several updates (DARTS: architecture, then weights) can be undone as a whole when a later part
 * fails. Call `restore()` or `release()` exactly once.
 *
 * @example
 * const cp = checkpoint(model, archKeys);
 * try { archStep(); weightStep(); cp.release(); } catch (e) { cp.restore(); throw e; }
 */
export function checkpoint(model: Model, keys: string[]): Checkpoint {
  const state = model.internalState;
  const values = new Map<string, Tensor>();
  const slots = new Map<string, Map<string, Tensor>>();
  const steps = new Map<string, number | undefined>();
  for (const key of keys) {
    values.set(key, tf.keep(tf.clone(model.param(key).value)));
    const own = state.slots.get(key);
    if (own) slots.set(key, new Map([...own].map(([name, t]) => [name, tf.keep(tf.clone(t))])));
    steps.set(key, state.optimizerSteps.get(key));
  }
  let done = false;
  const finish = (): void => {
    if (done) throw new Error('checkpoint: restore() or release() was already called');
    done = true;
  };
  return {
    restore() {
      finish();
      model.setParamValues(values);
      for (const key of keys) {
        const current = model.internalState.slots.get(key);
        if (current) for (const t of current.values()) t.dispose();
        const saved = slots.get(key);
        if (saved) model.internalState.slots.set(key, saved);
        else model.internalState.slots.delete(key);
        const n = steps.get(key);
        if (n === undefined) model.internalState.optimizerSteps.delete(key);
        else model.internalState.optimizerSteps.set(key, n);
      }
    },
    release() {
      finish();
      for (const t of values.values()) t.dispose();
      for (const map of slots.values()) for (const t of map.values()) t.dispose();
    },
  };
}
