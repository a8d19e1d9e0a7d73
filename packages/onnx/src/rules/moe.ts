import type { OnnxEmitContext, OnnxRule } from '../rule';

/** The attributes of @rs/moe's `moe` op that matter at inference. */
interface MoeAttrs {
  experts: number;
  hidden: number;
  units?: number;
  routing?: 'switch' | 'top2' | 'topk' | 'expertChoice';
  k?: number;
  evalCapacityFactor?: number;
  dropless?: boolean;
  activation?: 'relu' | 'gelu';
}

const ROUTINGS = ['switch', 'top2', 'topk', 'expertChoice'];

function resolved(attrs: MoeAttrs) {
  const routing = attrs.routing ?? 'switch';
  const k = routing === 'switch' ? 1 : routing === 'top2' ? 2 : routing === 'topk' ? attrs.k ?? 2 : 1;
  return { routing, k, capacityFactor: attrs.evalCapacityFactor ?? 2, dropless: attrs.dropless ?? false, activation: attrs.activation ?? 'relu' };
}

/** `max(1, ceil(cf * tokens * k / experts))` in double precision, as @rs/moe computes it on the host; float32 result. */
function capacity(ctx: OnnxEmitContext<MoeAttrs>, tokens: string, factor: number, k: number, experts: number): string {
  const t = ctx.op('Cast', [tokens], { to: 11 });
  const scaled = ctx.op('Div', [ctx.op('Mul', [ctx.op('Mul', [t, ctx.scalar(factor, 'float64')]), ctx.scalar(k, 'float64')]), ctx.scalar(experts, 'float64')]);
  const c = ctx.op('Max', [ctx.op('Ceil', [scaled]), ctx.scalar(1, 'float64')]);
  return ctx.op('Cast', [c], { to: 1 });
}

function activate(ctx: OnnxEmitContext<MoeAttrs>, x: string, kind: 'relu' | 'gelu'): string {
  if (kind === 'relu') return ctx.op('Relu', [x]);
  const cube = ctx.op('Mul', [ctx.op('Mul', [x, x]), x]);
  const inner = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [cube, ctx.scalar(0.044715)])]), ctx.scalar(Math.sqrt(2 / Math.PI))]);
  return ctx.op('Mul', [ctx.op('Mul', [x, ctx.scalar(0.5)]), ctx.op('Add', [ctx.op('Tanh', [inner]), ctx.scalar(1)])]);
}

/**
 * `moe` (@rs/moe) at inference, computed densely: every expert runs on every token and the
 * outputs are combined with a `[tokens, experts]` weight matrix that is zero wherever @rs/moe
 * would not route (or would drop) a token, so the result is the sparse layer's exactly:
 * - token choice (`switch`, `top2`, `topk`): TopK of the router softmax (ties: lower expert
 *   first, as @rs/moe's host routing); capacity `max(1, ceil(evalCapacityFactor * tokens * k /
 *   experts))` computed in the graph from the run's token count, in double precision like the
 *   host code; an assignment is kept when fewer than `capacity` earlier requests (earlier
 *   rounds first, then earlier tokens) went to its expert, which is the host's first-come order;
 *   gates are the router probabilities (renormalised over the k choices for top2 / topk);
 * - expert choice: each expert takes its `capacity` most probable tokens (TopK over tokens).
 * The exported graph computes all experts (E times the dense FFN work); only the result is exact.
 */
export const moeRule: OnnxRule<MoeAttrs> = {
  op: 'moe',
  check(info) {
    const a = resolved(info.node.attrs);
    if (!ROUTINGS.includes(a.routing)) return `routing '${String(a.routing)}' has no exporter (known: ${ROUTINGS.join(', ')})`;
    if (a.activation !== 'relu' && a.activation !== 'gelu') return `expert activation '${String(a.activation)}' has no exporter`;
    return undefined;
  },
  emit(ctx) {
    const a = resolved(ctx.node.attrs);
    const [x] = ctx.inputNames;
    const [experts, d] = ctx.params.w1;
    const out = ctx.params.w2[2];
    const flat = ctx.op('Reshape', [x, ctx.int64s([-1, d])]);
    const tokens = ctx.op('Slice', [ctx.op('Shape', [flat]), ctx.int64s([0]), ctx.int64s([1])]);
    const logits = ctx.op('Add', [ctx.op('MatMul', [flat, ctx.param('router')]), ctx.param('routerBias')]);
    const choice = ctx.op('Softmax', [logits], { axis: -1 });
    const offset = ctx.paramValues('gateOffset');
    const probs = offset.some((v) => v !== 0) ? ctx.op('Softmax', [ctx.op('Add', [logits, ctx.param('gateOffset')])], { axis: -1 }) : choice;

    let weights: string;
    if (a.routing === 'expertChoice') {
      let c = tokens;
      if (!a.dropless) {
        const limit = ctx.op('Cast', [capacity(ctx, tokens, a.capacityFactor, 1, experts)], { to: 7 });
        c = ctx.op('Min', [tokens, limit]);
      }
      const byExpert = ctx.op('Transpose', [choice], { perm: [1, 0] });
      const [, picked] = ctx.ops('TopK', [byExpert, c], { axis: 1, largest: 1, sorted: 1 }, { outputs: 2 });
      const zeros = ctx.op('ConstantOfShape', [ctx.op('Shape', [byExpert])], { value: { tensor: { dims: [1], dataType: 1, floatData: [0] } } });
      const ones = ctx.op('ConstantOfShape', [ctx.op('Shape', [picked])], { value: { tensor: { dims: [1], dataType: 1, floatData: [1] } } });
      const routed = ctx.op('Transpose', [ctx.op('ScatterElements', [zeros, picked, ones], { axis: 1 })], { perm: [1, 0] });
      weights = ctx.op('Mul', [routed, probs]);
    } else {
      const [, chosen] = ctx.ops('TopK', [choice, ctx.int64s([a.k])], { axis: -1, largest: 1, sorted: 1 }, { outputs: 2 });
      const onOff = ctx.constant([0, 1], [2]);
      const depth = ctx.int64s([experts]);
      const rounds = Array.from({ length: a.k }, (_, r) => {
        const column = ctx.op('Squeeze', [ctx.op('Slice', [chosen, ctx.int64s([r]), ctx.int64s([r + 1]), ctx.int64s([1])]), ctx.int64s([1])]);
        return ctx.op('OneHot', [column, depth, onOff], { axis: -1 });
      });
      const noDrop = a.dropless || a.capacityFactor * a.k >= experts;
      const cap = noDrop ? undefined : capacity(ctx, tokens, a.capacityFactor, a.k, experts);
      let earlier: string | undefined;
      const kept = rounds.map((request) => {
        if (!cap) return request;
        let position = ctx.op('CumSum', [request, ctx.constant([0], [], 'int64')], { exclusive: 1 });
        if (earlier) position = ctx.op('Add', [position, earlier]);
        const total = ctx.reduce('ReduceSum', request, [0], true);
        earlier = earlier ? ctx.op('Add', [earlier, total]) : total;
        const fits = ctx.op('Cast', [ctx.op('Less', [position, cap])], { to: 1 });
        return ctx.op('Mul', [request, fits]);
      });
      const routed = kept.length === 1 ? kept[0] : ctx.op('Sum', kept);
      weights = ctx.op('Mul', [routed, probs]);
      if (a.routing !== 'switch') {
        const chosenMask = rounds.length === 1 ? rounds[0] : ctx.op('Sum', rounds);
        const norm = ctx.reduce('ReduceSum', ctx.op('Mul', [chosenMask, probs]), [1], true);
        weights = ctx.op('Div', [weights, norm]);
      }
    }

    // Every expert on every token: [1, T, d] x [E, d, h] -> [E, T, h] -> [E, T, out].
    const hiddenPre = ctx.op('Add', [ctx.op('MatMul', [ctx.op('Unsqueeze', [flat, ctx.int64s([0])]), ctx.param('w1')]), ctx.op('Unsqueeze', [ctx.param('b1'), ctx.int64s([1])])]);
    const hidden = activate(ctx, hiddenPre, a.activation);
    const y = ctx.op('Add', [ctx.op('MatMul', [hidden, ctx.param('w2')]), ctx.op('Unsqueeze', [ctx.param('b2'), ctx.int64s([1])])]);
    const perExpert = ctx.op('Unsqueeze', [ctx.op('Transpose', [weights], { perm: [1, 0] }), ctx.int64s([2])]);
    const combined = ctx.reduce('ReduceSum', ctx.op('Mul', [y, perExpert]), [0], false);
    if (ctx.inputs[0].shape.length === 2) return combined;
    const lead = ctx.op('Slice', [ctx.op('Shape', [x]), ctx.int64s([0]), ctx.int64s([-1])]);
    return ctx.op('Reshape', [combined, ctx.op('Concat', [lead, ctx.int64s([out])], { axis: 0 })]);
  },
};
