// Unstructured pruning: element masks on weights.
import { RsError, tf, type Model, type Tensor } from '@rs/core';
import { checkFraction, checkMinimum, checkScope, minimumKept, resolveScore, smallest, type Scope } from './prune-common';
import { scoreWeights, type ImportanceScore, type ScoreContext, type ScoreRegistry } from './scores';

/** Options of `pruneWeights` (unstructured pruning with element masks). */
export interface PruneWeightsOptions {
  /** Fraction of the selected weights that are zero afterwards, in [0, 1). */
  sparsity: number;
  /** Per-parameter sparsity overriding `sparsity` (layer scope), e.g. a lower rate for the output layer. */
  sparsityPerParam?: Record<string, number>;
  /** Score name or object (default `l1`). */
  score?: string | ImportanceScore;
  scores?: ScoreRegistry;
  /** `layer`: each parameter reaches the sparsity; `global`: one ranking across all (default). */
  scope?: Scope;
  /** Parameters to prune (default: every trainable weight of rank >= 2: kernels, embeddings). */
  params?: string[];
  /**
   * Per-parameter minimum kept, so no layer is cut off: a fraction of its weights if < 1, else
   * a count of weights (default 0.01, i.e. 1%; at least one weight is always kept).
   */
  minKeep?: number;
  context?: ScoreContext;
  reason?: string;
}

/**
 * The parameters pruned by default: trainable weights of rank >= 2 (dense/conv kernels, embeddings...).
 *
 * @example
 * prunableParams(Model.create(lenet300100())); // ['fc1/kernel', 'fc2/kernel', 'fc3/kernel']
 */
export function prunableParams(model: Model): string[] {
  return model.paramKeys().filter((k) => {
    const entry = model.param(k);
    return entry.trainable && entry.role === 'weight' && entry.value.rank >= 2;
  });
}

/**
 * Unstructured pruning: element masks on the selected weights so that `sparsity` of them are
 * zero (already-pruned weights stay pruned), chosen by a score, layer-wise or globally. One
 * journaled edit; on any error the model is unchanged.
 *
 * @example
 * pruneWeights(model, { sparsity: 0.9, score: 'l1', scope: 'layer' });
 */
export function pruneWeights(model: Model, options: PruneWeightsOptions): { sparsity: Record<string, number> } {
  const sparsity = checkFraction('sparsity', options.sparsity);
  const scope = checkScope(options.scope ?? 'global');
  const minKeep = checkMinimum('minKeep', options.minKeep ?? 0.01);
  for (const [key, value] of Object.entries(options.sparsityPerParam ?? {})) checkFraction(`sparsityPerParam['${key}']`, value);
  if (options.sparsityPerParam && scope === 'global') {
    throw new RsError('INVALID_ARGUMENT', "sparsityPerParam applies to scope 'layer' only; with scope 'global' one ranking decides every layer's sparsity.");
  }
  const score = resolveScore(model, options);
  const params = options.params ?? prunableParams(model);
  for (const key of params) model.param(key); // typed error for unknown keys
  if (params.length === 0) throw new RsError('INVALID_ARGUMENT', 'No parameters to prune.');
  for (const key of Object.keys(options.sparsityPerParam ?? {})) {
    if (!params.includes(key)) throw new RsError('INVALID_ARGUMENT', `sparsityPerParam names '${key}', which is not among the pruned parameters (${params.join(', ')}).`, { param: key });
  }

  const weights = scoreWeights(score, model, params, options.context ?? {});
  const values = new Map<string, Float32Array>();
  const already = new Map<string, number>();
  try {
    for (const key of params) {
      const s = (weights.get(key) as Tensor).dataSync().slice() as Float32Array;
      if (score.signed) for (let i = 0; i < s.length; i++) s[i] = Math.abs(s[i]);
      const mask = model.param(key).mask?.dataSync();
      // Pruned weights rank first and stay pruned whatever the score or target says: sparsity
      // never decreases (a minimum that an earlier call undercut is not restored either).
      let masked = 0;
      if (mask) {
        for (let i = 0; i < s.length; i++) {
          if (mask[i] === 0) {
            s[i] = -Infinity;
            masked += 1;
          }
        }
      }
      values.set(key, s);
      already.set(key, masked);
    }
  } finally {
    for (const t of weights.values()) t.dispose();
  }

  const prune = new Map<string, Uint8Array>(params.map((k) => [k, new Uint8Array((values.get(k) as Float32Array).length)]));
  const maxPrune = (key: string) => {
    const n = (values.get(key) as Float32Array).length;
    return Math.max(n - minimumKept(minKeep, n), already.get(key) as number);
  };
  if (scope === 'layer') {
    for (const key of params) {
      const s = values.get(key) as Float32Array;
      const target = options.sparsityPerParam?.[key] ?? sparsity;
      const count = Math.max(already.get(key) as number, Math.min(Math.floor(target * s.length), maxPrune(key)));
      for (const i of smallest(s, count)) (prune.get(key) as Uint8Array)[i] = 1;
    }
  } else {
    const total = params.reduce((n, k) => n + (values.get(k) as Float32Array).length, 0);
    const all = new Float32Array(total);
    const owner = new Uint32Array(total);
    let at = 0;
    params.forEach((key, p) => {
      all.set(values.get(key) as Float32Array, at);
      owner.fill(p, at, at + (values.get(key) as Float32Array).length);
      at += (values.get(key) as Float32Array).length;
    });
    const offsets: number[] = [];
    params.reduce((n, k) => (offsets.push(n), n + (values.get(k) as Float32Array).length), 0);
    const budget = params.map((k) => maxPrune(k) - (already.get(k) as number));
    let remaining = Math.max(0, Math.floor(sparsity * total) - params.reduce((n, k) => n + (already.get(k) as number), 0));
    for (const i of smallest(all, total)) {
      const p = owner[i];
      if (all[i] === -Infinity) {
        (prune.get(params[p]) as Uint8Array)[i - offsets[p]] = 1;
        continue;
      }
      if (remaining === 0) break;
      if (budget[p] === 0) continue;
      budget[p] -= 1;
      remaining -= 1;
      (prune.get(params[p]) as Uint8Array)[i - offsets[p]] = 1;
    }
  }

  const achieved: Record<string, number> = {};
  model.edit(
    (tx) => {
      for (const key of params) {
        const flags = prune.get(key) as Uint8Array;
        const keep = new Float32Array(flags.length);
        let zeros = 0;
        for (let i = 0; i < flags.length; i++) {
          keep[i] = flags[i] ? 0 : 1;
          zeros += flags[i];
        }
        achieved[key] = zeros / flags.length;
        const mask = tf.tensor(keep, model.param(key).value.shape);
        try {
          tx.setMask(key, mask);
        } finally {
          mask.dispose();
        }
      }
    },
    { technique: 'prune', reason: options.reason ?? `${score.name} ${scope} unstructured pruning to ${(100 * sparsity).toFixed(1)}% sparsity`, details: { score: score.name, scope, sparsity } },
  );
  return { sparsity: achieved };
}
