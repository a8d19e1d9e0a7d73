import { tf, type Tensor } from './tf';
import { RsError } from './errors';
import type { ValidatedGraph } from './ir/validate';
import { initialize, type SeededRng } from './rng';
import type { ParamEntry } from './model-types';

/**
 * The parameters of a new model: `given` values (copied, shape-checked) or the op's seeded
 * initializer. On any error, nothing is left allocated.
 */
export function initialParams(validated: ValidatedGraph, given: Record<string, Tensor>, rng: SeededRng): Map<string, ParamEntry> {
  for (const key of Object.keys(given)) {
    if (!validated.paramSpecs.has(key)) throw new RsError('UNKNOWN_PARAM', `No parameter '${key}' in this graph.`, { param: key });
  }
  const params = new Map<string, ParamEntry>();
  try {
    for (const [key, spec] of validated.paramSpecs) {
      let value: Tensor;
      if (given[key]) {
        const provided = given[key];
        if (provided.shape.join(',') !== spec.shape.join(',')) {
          throw new RsError('SHAPE_MISMATCH', `Parameter '${key}' needs shape [${spec.shape.join(', ')}], got [${provided.shape.join(', ')}].`);
        }
        value = tf.keep(tf.clone(provided));
      } else {
        value = tf.keep(initialize(spec.init, spec.shape, rng));
      }
      params.set(key, { value, trainable: spec.trainable ?? spec.role !== 'state', role: spec.role ?? 'weight' });
    }
  } catch (error) {
    for (const entry of params.values()) entry.value.dispose();
    throw error;
  }
  return params;
}
