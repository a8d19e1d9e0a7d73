/**
 * Token-to-expert assignment on the host, from router probabilities. The choice itself is not
 * differentiable (it is an argmax / top-k); gradients reach the router through the gate values,
 * which the op gathers from the probability tensor at the assignments made here.
 */

/** How tokens are assigned to experts. */
export type Routing = 'switch' | 'top2' | 'topk' | 'expertChoice';

export interface RouteOptions {
  routing: Routing;
  /** Experts per token (token choice); switch = 1, top2 = 2. */
  k: number;
  /** Capacity factor: each expert takes at most ceil(cf * tokens * k / experts) assignments. */
  capacityFactor: number;
  /** No capacity limit: no assignment is ever dropped. */
  dropless: boolean;
}

/** The result of {@link route}: accepted assignments sorted by expert. */
export interface RouteResult {
  /** Token of each accepted assignment, grouped by expert (expert 0 first). */
  tokens: Int32Array;
  /** Expert of each accepted assignment (non-decreasing). */
  experts: Int32Array;
  /** Accepted assignments per expert. */
  counts: Int32Array;
  /** Router choices per expert before the capacity limit (first choice only for token choice). */
  firstChoice: Int32Array;
  /** For normalized gates (top2, topk): per token, the flat indices `t * E + e` of its k choices. */
  chosen?: Int32Array;
  /** Assignments asked for (tokens * k, or tokens for expert choice) and how many were dropped. */
  requested: number;
  dropped: number;
  capacity: number;
}

/**
 * The arithmetic a capacity formula is written in: plain numbers on the host, or graph values
 * (e.g. ONNX nodes) in an exporter. Numbers are doubles in both.
 */
export interface CapacityArithmetic<T> {
  constant(value: number): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  ceil(a: T): T;
  max(a: T, b: T): T;
}

/** A per-expert capacity formula over any {@link CapacityArithmetic} (the one formula the layer and its exporters share). */
export type CapacityFormula = <T>(m: CapacityArithmetic<T>, tokens: T, experts: number, k: number, capacityFactor: number) => T;

/** The capacity of the `moe` op: `max(1, ceil(cf * tokens * k / experts))`. */
export const capacityFormula: CapacityFormula = (m, tokens, experts, k, capacityFactor) =>
  m.max(m.constant(1), m.ceil(m.div(m.mul(m.mul(m.constant(capacityFactor), tokens), m.constant(k)), m.constant(experts))));

/** {@link CapacityArithmetic} over JavaScript numbers. */
export const hostArithmetic: CapacityArithmetic<number> = {
  constant: (v) => v,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  ceil: Math.ceil,
  max: Math.max,
};

/** Per-expert capacity ({@link capacityFormula} on the host), at least 1; Infinity when dropless. */
export function expertCapacity(tokens: number, experts: number, k: number, capacityFactor: number, dropless: boolean): number {
  if (dropless) return Infinity;
  return capacityFormula(hostArithmetic, tokens, experts, k, capacityFactor);
}

/** Indices of the `k` largest values of `row` (ties: lower index first), largest first. */
function topIndices(row: ArrayLike<number>, offset: number, length: number, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < length; i++) {
    const v = row[offset + i];
    let at = best.length;
    while (at > 0 && row[offset + best[at - 1]] < v) at--;
    if (at < k) {
      best.splice(at, 0, i);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/**
 * Assigns tokens to experts from router probabilities `probs` ([tokens, experts], row-major).
 * Token choice (switch, top2, topk): each token picks its k most probable experts; experts
 * accept first choices of all tokens in order, then second choices, until full (Fedus 2021,
 * GShard). Expert choice (Zhou 2022): each expert picks its `capacity` most probable tokens.
 *
 * @example
 * const r = route(probs, 128, 8, { routing: 'switch', k: 1, capacityFactor: 1.25, dropless: false });
 */
export function route(probs: ArrayLike<number>, tokens: number, experts: number, options: RouteOptions): RouteResult {
  const counts = new Int32Array(experts);
  const firstChoice = new Int32Array(experts);
  const perExpert: number[][] = Array.from({ length: experts }, () => []);
  let requested = 0;
  let dropped = 0;
  let capacity: number;
  let chosen: Int32Array | undefined;
  if (options.routing === 'expertChoice') {
    capacity = options.dropless ? tokens : Math.min(tokens, expertCapacity(tokens, experts, 1, options.capacityFactor, false));
    const column = new Float32Array(tokens);
    const picked = new Uint8Array(tokens);
    for (let e = 0; e < experts; e++) {
      for (let t = 0; t < tokens; t++) column[t] = probs[t * experts + e];
      const top = topIndices(column, 0, tokens, capacity).sort((a, b) => a - b);
      perExpert[e] = top;
      for (const t of top) picked[t] = 1;
    }
    for (let t = 0; t < tokens; t++) {
      firstChoice[topIndices(probs, t * experts, experts, 1)[0]] += 1;
      if (!picked[t]) dropped += 1;
    }
    requested = tokens;
  } else {
    const k = options.k;
    capacity = expertCapacity(tokens, experts, k, options.capacityFactor, options.dropless);
    const choices = new Int32Array(tokens * k);
    for (let t = 0; t < tokens; t++) {
      const top = topIndices(probs, t * experts, experts, k);
      for (let r = 0; r < k; r++) choices[t * k + r] = top[r];
      firstChoice[top[0]] += 1;
    }
    for (let r = 0; r < k; r++) {
      for (let t = 0; t < tokens; t++) {
        const e = choices[t * k + r];
        requested += 1;
        if (perExpert[e].length < capacity) perExpert[e].push(t);
        else dropped += 1;
      }
    }
    if (options.routing !== 'switch') {
      chosen = new Int32Array(tokens * k);
      for (let i = 0; i < tokens * k; i++) chosen[i] = Math.floor(i / k) * experts + choices[i];
    }
  }
  let total = 0;
  for (let e = 0; e < experts; e++) total += perExpert[e].length;
  const tokenList = new Int32Array(total);
  const expertList = new Int32Array(total);
  let at = 0;
  for (let e = 0; e < experts; e++) {
    counts[e] = perExpert[e].length;
    for (const t of perExpert[e]) {
      tokenList[at] = t;
      expertList[at] = e;
      at++;
    }
  }
  return { tokens: tokenList, experts: expertList, counts, firstChoice, chosen, requested, dropped, capacity };
}
