import { tf, type Tensor } from '@rs/core';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The expert activation; gelu is the tanh approximation of core's `gelu` op. */
export function activate(x: Tensor, kind: 'relu' | 'gelu'): Tensor {
  if (kind === 'relu') return tf.relu(x);
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), SQRT_2_OVER_PI);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** d activate(x) / dx. */
function activationGrad(x: Tensor, kind: 'relu' | 'gelu'): Tensor {
  if (kind === 'relu') return tf.step(x);
  const t = tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), SQRT_2_OVER_PI));
  const du = tf.mul(tf.add(tf.mul(tf.square(x), 3 * 0.044715), 1), SQRT_2_OVER_PI);
  return tf.add(tf.mul(tf.add(t, 1), 0.5), tf.mul(tf.mul(tf.mul(x, 0.5), tf.sub(1, tf.square(t))), du));
}

/**
 * Runs the routed tokens through their experts: for each active expert, gather its tokens and
 * its weights (native gathers, sized by that expert only) and apply two 2-D matmuls. Returns the
 * expert outputs in expert order ([assignments, out]).
 *
 * The backward pass is written by hand so that its cost stays proportional to the routed tokens:
 * autodiff of per-expert gathers/slices would build a full-size [E, ...] (or [tokens, d])
 * gradient per expert, and on the wasm backend every slice of a tensor reads the whole tensor,
 * which made 64 experts ~10x slower than 1 (bench/moe-scaling.mjs). Here the weight gradients
 * are stacked once and the input gradient is one scatter-add.
 */
export function dispatchExperts(
  x: Tensor,
  w1: Tensor,
  b1: Tensor,
  w2: Tensor,
  b2: Tensor,
  active: number[],
  tokenLists: Int32Array[],
  kind: 'relu' | 'gelu',
): Tensor {
  const [tokens, d] = x.shape as [number, number];
  const [experts, , h] = w1.shape as [number, number, number];
  const out = w2.shape[2] as number;
  const block = tf.customGrad(((xIn: Tensor, W1: Tensor, B1: Tensor, W2: Tensor, B2: Tensor, save: (t: Tensor[]) => void) => {
    const saved: Tensor[] = [];
    const outputs = active.map((e, i) => {
      const sel = tf.tensor1d([e], 'int32');
      const xe = tf.gather(xIn, tf.tensor1d(tokenLists[i], 'int32'));
      const w1e = tf.reshape(tf.gather(W1, sel), [d, h]);
      const w2e = tf.reshape(tf.gather(W2, sel), [h, out]);
      // Biases fused into the matmuls (a separate broadcast add is a second pass over the output).
      const pre = tf.fused.matMul({ a: xe as tf.Tensor2D, b: w1e as tf.Tensor2D, bias: tf.reshape(tf.gather(B1, sel), [h]) });
      const hidden = activate(pre, kind);
      saved.push(xe, w1e, w2e, pre, hidden);
      return tf.fused.matMul({ a: hidden as tf.Tensor2D, b: w2e as tf.Tensor2D, bias: tf.reshape(tf.gather(B2, sel), [out]) });
    });
    save(saved);
    return {
      value: outputs.length === 1 ? outputs[0] : tf.concat(outputs, 0),
      gradFunc: (dy: Tensor, s: Tensor[]) => {
        const gW1: (Tensor | undefined)[] = new Array(experts).fill(undefined);
        const gB1: (Tensor | undefined)[] = new Array(experts).fill(undefined);
        const gW2: (Tensor | undefined)[] = new Array(experts).fill(undefined);
        const gB2: (Tensor | undefined)[] = new Array(experts).fill(undefined);
        const dxParts: Tensor[] = [];
        let offset = 0;
        active.forEach((e, i) => {
          const [xe, w1e, w2e, pre, hidden] = s.slice(5 * i, 5 * i + 5);
          const n = tokenLists[i].length;
          const dye = active.length === 1 ? dy : tf.gather(dy, tf.range(offset, offset + n, 1, 'int32'));
          offset += n;
          gW2[e] = tf.matMul(tf.transpose(hidden), dye as tf.Tensor2D);
          gB2[e] = tf.sum(dye, 0);
          const dpre = tf.mul(tf.matMul(dye as tf.Tensor2D, tf.transpose(w2e)), activationGrad(pre, kind));
          gW1[e] = tf.matMul(tf.transpose(xe), dpre as tf.Tensor2D);
          gB1[e] = tf.sum(dpre, 0);
          dxParts.push(tf.matMul(dpre as tf.Tensor2D, tf.transpose(w1e)));
        });
        const fill = (list: (Tensor | undefined)[], shape: number[]): Tensor => {
          const full = list.map((t) => t ?? tf.zeros(shape));
          return full.length === 1 ? tf.expandDims(full[0], 0) : tf.stack(full);
        };
        const all = new Int32Array(tokenLists.reduce((n, l) => n + l.length, 0));
        let at = 0;
        for (const list of tokenLists) {
          all.set(list, at);
          at += list.length;
        }
        const dx = tf.unsortedSegmentSum(dxParts.length === 1 ? dxParts[0] : tf.concat(dxParts, 0), tf.tensor1d(all, 'int32'), tokens);
        return [dx, fill(gW1, [d, h]), fill(gB1, [h]), fill(gW2, [h, out]), fill(gB2, [out])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (block as unknown as (...t: Tensor[]) => Tensor)(x, w1, b1, w2, b2);
}
