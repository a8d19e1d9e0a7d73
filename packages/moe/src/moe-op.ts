import { tf, formatShape, type OpSchema, type ParamSpec } from '@rs/core';
import { route, type Routing } from './routing';
import { balanceLoss, routerEntropy, routerZLoss } from './losses';
import { dispatchExperts } from './dispatch';

/** Attributes of the `moe` op. Only `experts` and `hidden` are required. */
export interface MoeAttrs {
  /** Number of experts (a unit axis: core edits add and remove experts). */
  experts: number;
  /** Hidden width of every expert FFN. */
  hidden: number;
  /** Output features; default: the input's features (so the layer fits a residual branch). */
  units?: number;
  /** Default `'switch'` (top-1, Fedus 2021). */
  routing?: Routing;
  /** Experts per token for `'topk'` (default 2); fixed to 1 for switch and 2 for top2. */
  k?: number;
  /** Capacity factor while training; default 1.25 (token choice) or 2 (expert choice). */
  capacityFactor?: number;
  /** Capacity factor at evaluation; default 2. */
  evalCapacityFactor?: number;
  /** No capacity limit (no token is dropped). Default false. */
  dropless?: boolean;
  /** Trainable, input-dependent Gaussian noise on router logits while training (Shazeer 2017). Default: true for topk. */
  noisy?: boolean;
  /** Coefficient alpha of the load-balancing loss; default 0.01 (Switch). 0 disables it. */
  balanceCoef?: number;
  /** Coefficient of the router z-loss; default 0.001 (ST-MoE). 0 disables it. */
  zCoef?: number;
  /** Expert activation; default `'relu'`. */
  activation?: 'relu' | 'gelu';
}

/** `attrs` with every default filled in. */
export function resolveMoeAttrs(attrs: MoeAttrs): Required<Omit<MoeAttrs, 'units'>> & { units?: number } {
  const routing = attrs.routing ?? 'switch';
  const k = routing === 'switch' ? 1 : routing === 'top2' ? 2 : routing === 'topk' ? attrs.k ?? 2 : 1;
  return {
    experts: attrs.experts,
    hidden: attrs.hidden,
    units: attrs.units,
    routing,
    k,
    capacityFactor: attrs.capacityFactor ?? (routing === 'expertChoice' ? 2 : 1.25),
    evalCapacityFactor: attrs.evalCapacityFactor ?? 2,
    dropless: attrs.dropless ?? false,
    noisy: attrs.noisy ?? routing === 'topk',
    balanceCoef: attrs.balanceCoef ?? 0.01,
    zCoef: attrs.zCoef ?? 0.001,
    activation: attrs.activation ?? 'relu',
  };
}

const ROUTINGS: readonly Routing[] = ['switch', 'top2', 'topk', 'expertChoice'];
/**
 * A mixture-of-experts FFN layer with sparse dispatch: an fp32 linear router picks experts per
 * token, only the routed tokens are gathered and run through each expert (one 2-D matmul pair
 * per expert), and the results are combined with the gate values (through which the router
 * gets its gradient). Tokens over an expert's capacity are dropped: their output is zero, so in
 * a residual branch they pass through unchanged (Fedus 2021). Reports the balance and z losses
 * (`node/balance`, `node/z`) and metrics `balance_unscaled`, `z_unscaled`, `entropy` while
 * training, and `dropped`, `imbalance` and `load.<i>` (fraction of tokens whose first choice is
 * expert i) in every pass.
 *
 * Parameters: `router` [d, E], `routerBias` [E], `gateOffset` [E] (not trained), `noise` [d, E] (noisy only), `w1` [E, d, h],
 * `b1` [E, h], `w2` [E, h, out], `b2` [E, out]. Unit groups: `node:experts`, `node:hidden`, and
 * the output features.
 *
 * @example
 * registry.register(moe);
 * // { id: 'moe1', op: 'moe', inputs: ['ln'], attrs: { experts: 8, hidden: 128, routing: 'switch' } }
 */
export const moe: OpSchema<MoeAttrs> = {
  name: 'moe',
  arity: 1,
  infer(attrs, [x], ctx) {
    const a = resolveMoeAttrs(attrs);
    const positive = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1;
    if (!positive(a.experts)) ctx.failAttrs(`experts must be a positive integer, got ${String(attrs.experts)}`);
    if (!positive(a.hidden)) ctx.failAttrs(`hidden must be a positive integer, got ${String(attrs.hidden)}`);
    if (a.units !== undefined && !positive(a.units)) ctx.failAttrs(`units must be a positive integer, got ${String(a.units)}`);
    if (!ROUTINGS.includes(a.routing)) ctx.failAttrs(`routing must be one of ${ROUTINGS.join(', ')}, got ${String(a.routing)}`);
    if (!positive(a.k)) ctx.failAttrs(`k must be a positive integer, got ${String(a.k)}`);
    if (a.routing !== 'expertChoice' && a.k > a.experts) {
      ctx.failAttrs(`k = ${a.k} experts per token is more than the ${a.experts} experts of the layer; use k <= experts or add experts`);
    }
    for (const [name, v] of [['capacityFactor', a.capacityFactor], ['evalCapacityFactor', a.evalCapacityFactor]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) ctx.failAttrs(`${name} must be a finite number > 0, got ${String(v)} (use dropless: true for no limit)`);
    }
    for (const [name, v] of [['balanceCoef', a.balanceCoef], ['zCoef', a.zCoef]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) ctx.failAttrs(`${name} must be a finite number >= 0, got ${String(v)}`);
    }
    if (a.activation !== 'relu' && a.activation !== 'gelu') ctx.failAttrs(`activation must be 'relu' or 'gelu', got ${String(a.activation)}`);
    const last = x.shape[x.shape.length - 1];
    if (x.shape.length < 2 || last === null) ctx.fail(`expects an input of rank >= 2 with a known last axis, got ${formatShape(x.shape)}`);
    if (x.dtype !== 'float32') ctx.fail(`expects float32 input, got ${x.dtype}`);
    return { shape: [...x.shape.slice(0, -1), a.units ?? last], dtype: 'float32' };
  },
  params(attrs, [x]) {
    const a = resolveMoeAttrs(attrs);
    const d = x.shape[x.shape.length - 1] as number;
    const out = a.units ?? d;
    // Router: small normal init, std sqrt(0.1 / fan_in) (Switch Transformer, section 2.4).
    const specs: Record<string, ParamSpec> = {
      router: { shape: [d, a.experts], init: { kind: 'normal', std: Math.sqrt(0.1 / d) } },
      routerBias: { shape: [a.experts], init: { kind: 'zeros' }, role: 'bias' },
      // Log-multiplicity of each expert in the gate softmax (not in the choice): 0, or -log 2 for
      // the two halves of a split expert. Not trained.
      gateOffset: { shape: [a.experts], init: { kind: 'zeros' }, role: 'bias', trainable: false },
      w1: { shape: [a.experts, d, a.hidden], init: { kind: 'glorotUniform', fanIn: d, fanOut: a.hidden } },
      b1: { shape: [a.experts, a.hidden], init: { kind: 'zeros' }, role: 'bias' },
      w2: { shape: [a.experts, a.hidden, out], init: { kind: 'glorotUniform', fanIn: a.hidden, fanOut: out } },
      b2: { shape: [a.experts, out], init: { kind: 'zeros' }, role: 'bias' },
    };
    // Shazeer et al. 2017 initialise the noise weights to zero.
    if (a.noisy) specs.noise = { shape: [d, a.experts], init: { kind: 'zeros' } };
    return specs;
  },
  forward([x], p, attrs, ctx) {
    const a = resolveMoeAttrs(attrs);
    const d = x.shape[x.shape.length - 1] as number;
    const flat = (x.rank === 2 ? x : tf.reshape(x, [-1, d])) as tf.Tensor2D;
    const tokens = flat.shape[0] as number;
    const experts = p.w1.shape[0] as number;
    const out = p.w2.shape[2] as number;
    let logits = tf.add(tf.matMul(flat, p.router as tf.Tensor2D), p.routerBias);
    if (a.noisy && ctx.training && p.noise) {
      const scale = tf.softplus(tf.matMul(flat, p.noise as tf.Tensor2D));
      logits = tf.add(logits, tf.mul(tf.randomNormal([tokens, experts], 0, 1, 'float32', ctx.rng.seed()), scale));
    }
    // The choice uses the router softmax; gates and losses add each expert's log-multiplicity,
    // so a split expert's copies are chosen like the original while sharing its probability.
    const choice = tf.softmax(logits);
    const offset = p.gateOffset.dataSync();
    const probs = offset.some((v) => v !== 0) ? tf.softmax(tf.add(logits, p.gateOffset)) : choice;
    const r = route(choice.dataSync(), tokens, experts, {
      routing: a.routing,
      k: a.k,
      capacityFactor: ctx.training ? a.capacityFactor : a.evalCapacityFactor,
      dropless: a.dropless,
    });

    // Metrics and auxiliary losses (reported every training step; the losses are trained on).
    // Outside training only the host-side routing metrics are reported (no extra tensor work).
    if (ctx.training) {
      const unscaled = balanceLoss(probs, r.firstChoice);
      const z = routerZLoss(logits);
      if (a.balanceCoef > 0) ctx.addLoss('balance', tf.mul(unscaled, a.balanceCoef));
      if (a.zCoef > 0) ctx.addLoss('z', tf.mul(z, a.zCoef));
      ctx.addMetric('balance_unscaled', unscaled);
      ctx.addMetric('z_unscaled', z);
      ctx.addMetric('entropy', routerEntropy(probs));
    }
    ctx.addMetric('dropped', tf.scalar(r.requested > 0 ? r.dropped / r.requested : 0));
    let busiest = 0;
    for (let e = 0; e < experts; e++) {
      busiest = Math.max(busiest, r.firstChoice[e]);
      ctx.addMetric(`load.${e}`, tf.scalar(r.firstChoice[e] / tokens));
    }
    ctx.addMetric('imbalance', tf.scalar(busiest / (tokens / experts)));

    const shapeOut = [...x.shape.slice(0, -1), out] as number[];
    if (r.tokens.length === 0) return tf.reshape(tf.zeros([tokens, out]), shapeOut);
    // Gates: router probability of the chosen expert (switch, expert choice), renormalised over
    // the token's k choices for top2 / topk (GShard; Shazeer's softmax over the top-k logits).
    const flatProbs = tf.reshape(probs, [-1]);
    const tokenIndex = tf.tensor1d(r.tokens, 'int32');
    const flatIndex = tf.tensor1d(r.tokens.map((t, i) => t * experts + r.experts[i]), 'int32');
    let gate = tf.gather(flatProbs, flatIndex);
    if (r.chosen) {
      const sums = tf.sum(tf.reshape(tf.gather(flatProbs, tf.tensor1d(r.chosen, 'int32')), [tokens, a.k]), 1);
      gate = tf.div(gate, tf.gather(sums, tokenIndex));
    }

    // Sparse dispatch: per active expert, a gather of its tokens and a pair of 2-D matmuls
    // (dispatch.ts, with a hand-written backward that stays proportional to the routed tokens).
    const active: number[] = [];
    const lists: Int32Array[] = [];
    let start = 0;
    for (let e = 0; e < experts; e++) {
      if (r.counts[e] > 0) {
        active.push(e);
        lists.push(r.tokens.subarray(start, start + r.counts[e]));
      }
      start += r.counts[e];
    }
    const y = dispatchExperts(flat, p.w1, p.b1, p.w2, p.b2, active, lists, a.activation);
    const combined = tf.unsortedSegmentSum(tf.mul(y, tf.expandDims(gate, 1)), tokenIndex, tokens);
    return x.rank === 2 ? combined : tf.reshape(combined, shapeOut);
  },
  units(u) {
    const a = resolveMoeAttrs(u.attrs);
    const input = u.input(0);
    u.consume(input, 'router', 0);
    if (a.noisy) u.consume(input, 'noise', 0);
    u.consume(input, 'w1', 1);
    const expertParams = [
      { param: 'router', axis: 1 },
      { param: 'routerBias', axis: 0 },
      { param: 'gateOffset', axis: 0 },
      { param: 'w1', axis: 0 },
      { param: 'b1', axis: 0 },
      { param: 'w2', axis: 0 },
      { param: 'b2', axis: 0 },
    ];
    if (a.noisy) expertParams.push({ param: 'noise', axis: 1 });
    u.source('experts', a.experts, expertParams);
    u.source('hidden', a.hidden, [
      { param: 'w1', axis: 2 },
      { param: 'b1', axis: 1 },
      { param: 'w2', axis: 1, role: 'in' } as const,
    ]);
    const d = u.inputs[0].shape[u.inputs[0].shape.length - 1] as number;
    return u.source('out', a.units ?? d, [
      { param: 'w2', axis: 2 },
      { param: 'b2', axis: 1 },
    ]);
  },
  // Active compute per token: router, then k experts (expert choice: capacityFactor on average).
  flops(attrs, [x]) {
    const a = resolveMoeAttrs(attrs);
    const shape = x.shape.map((s) => s ?? 1) as number[];
    const d = shape[shape.length - 1];
    const rows = shape.slice(0, -1).reduce((m, v) => m * v, 1);
    const out = a.units ?? d;
    const perToken = a.routing === 'expertChoice' ? a.capacityFactor : a.k;
    const expert = 2 * d * a.hidden + 2 * a.hidden * out + a.hidden + out;
    return rows * (2 * d * a.experts + 5 * a.experts + perToken * (expert + out));
  },
  syncAttrs(attrs, shapes, inputs) {
    const d = inputs[0]?.shape[inputs[0].shape.length - 1];
    const units = shapes.w2[2];
    const next: MoeAttrs = { ...attrs, experts: shapes.w1[0], hidden: shapes.w1[2] };
    if (attrs.units !== undefined || units !== d) next.units = units;
    return next;
  },
};
