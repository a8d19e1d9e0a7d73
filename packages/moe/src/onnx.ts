import type { OnnxEmitContext, OnnxRule } from '@rs/core/extend';
import { resolveMoeAttrs, type MoeAttrs } from './moe-op';
import { capacityFormula, hostArithmetic, type CapacityArithmetic, type CapacityFormula } from './routing';

const ROUTINGS = ['switch', 'top2', 'topk', 'expertChoice'];

/** The capacity formula's arithmetic as ONNX nodes (double precision, like the host). */
function graphArithmetic(ctx: OnnxEmitContext<MoeAttrs>): CapacityArithmetic<string> {
  return {
    constant: (v) => ctx.scalar(v, 'float64'),
    mul: (a, b) => ctx.op('Mul', [a, b]),
    div: (a, b) => ctx.op('Div', [a, b]),
    ceil: (a) => ctx.op('Ceil', [a]),
    max: (a, b) => ctx.op('Max', [a, b]),
  };
}

/** Number of tokens the node routes when the export fixes every dimension, else undefined. */
function staticTokens(ctx: OnnxEmitContext<MoeAttrs>): number | undefined {
  const shape = ctx.inputs[0].shape;
  if (typeof ctx.batch !== 'number') return undefined;
  let n = 1;
  for (let i = 0; i < shape.length - 1; i++) {
    const d = i === 0 ? ctx.batch : shape[i];
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

function activate(ctx: OnnxEmitContext<MoeAttrs>, x: string, kind: 'relu' | 'gelu'): string {
  if (kind === 'relu') return ctx.op('Relu', [x]);
  const cube = ctx.op('Mul', [ctx.op('Mul', [x, x]), x]);
  const inner = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [cube, ctx.scalar(0.044715)])]), ctx.scalar(Math.sqrt(2 / Math.PI))]);
  return ctx.op('Mul', [ctx.op('Mul', [x, ctx.scalar(0.5)]), ctx.op('Add', [ctx.op('Tanh', [inner]), ctx.scalar(1)])]);
}

/**
 * The ONNX lowering of `moe` at inference (provided at extension point `'onnx'` by `register`),
 * computed densely: every expert runs on every token and the outputs are combined with a
 * `[tokens, experts]` weight matrix that is zero wherever the layer would not route (or would
 * drop) a token, so the result is the sparse layer's exactly:
 * - token choice (`switch`, `top2`, `topk`): TopK of the router softmax (ties: lower expert
 *   first, as the host routing); the capacity is `formula` (default {@link capacityFormula},
 *   the one {@link expertCapacity} uses) at `evalCapacityFactor`: a constant when the export fixes
 *   the token count, else computed in the graph from the run's token count by the same formula
 *   in double precision; an assignment is kept when fewer than `capacity` earlier requests
 *   (earlier rounds first, then earlier tokens) went to its expert, the host's first-come order;
 *   gates are the router probabilities (renormalised over the k choices for top2 / topk);
 * - expert choice: each expert takes its `capacity` most probable tokens (TopK over tokens).
 * The exported graph computes all experts (E times the dense FFN work); only the result is exact.
 *
 * @example
 * registry.provide('onnx', 'moe', moeOnnxRule(), { override: true });
 */
export function moeOnnxRule(formula: CapacityFormula = capacityFormula): OnnxRule<MoeAttrs> {
  /** The capacity as a float32 value: a constant for a static token count, else graph nodes. */
  const capacity = (ctx: OnnxEmitContext<MoeAttrs>, tokens: string, factor: number, k: number, experts: number): string => {
    const fixed = staticTokens(ctx);
    if (fixed !== undefined) return ctx.scalar(formula(hostArithmetic, fixed, experts, k, factor));
    const t = ctx.op('Cast', [tokens], { to: 11 });
    return ctx.op('Cast', [formula(graphArithmetic(ctx), t, experts, k, factor)], { to: 1 });
  };
  return {
    op: 'moe',
    check(info) {
      const a = resolveMoeAttrs(info.node.attrs);
      if (!ROUTINGS.includes(a.routing)) return `routing '${String(a.routing)}' has no exporter (known: ${ROUTINGS.join(', ')})`;
      if (a.activation !== 'relu' && a.activation !== 'gelu') return `expert activation '${String(a.activation)}' has no exporter`;
      return undefined;
    },
    emit(ctx) {
      const a = resolveMoeAttrs(ctx.node.attrs);
      const capacityFactor = a.evalCapacityFactor;
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
          const limit = ctx.op('Cast', [capacity(ctx, tokens, capacityFactor, 1, experts)], { to: 7 });
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
        const cap = a.dropless ? undefined : capacity(ctx, tokens, capacityFactor, a.k, experts);
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
}

/** The ONNX lowering of `moe` with the layer's own capacity formula. */
export const moeOnnx: OnnxRule<MoeAttrs> = moeOnnxRule();
