import { tf, RsError, softmaxCrossEntropy, disposeGradients, type Gradients, type Model, type Optimizer, type Tensor, type SeededRng, createRng } from '@rs/core';
import { execute, gradientsOf, unitPositions } from '@rs/core/extend';

/** Options of a slimmable network. */
export interface SlimmableOptions {
  /** Width multipliers in (0, 1], e.g. [0.25, 0.5, 0.75, 1]; 1 must be among them. */
  widths: number[];
  /** Unit groups (hidden layers) that shrink with the width; the first units are kept. */
  groups: string[];
  /** Seed of the sandwich rule's random widths. Default 0. */
  seed?: number;
}

const TOL = 1e-9;

/**
 * A slimmable network (Yu et al. 2019): one set of weights that runs at several widths; at width
 * w every listed group keeps its first ceil(w * units) units. Normalization statistics
 * (batchNorm moving mean/variance) are kept separately for every width.
 *
 * @example
 * const slim = new Slimmable(model, { widths: [0.25, 0.5, 0.75, 1], groups: ['fc1', 'fc2'] });
 * slim.step(x, y, adam()); const logits = slim.apply(x, 0.5);
 */
export class Slimmable {
  readonly model: Model;
  readonly widths: number[];
  readonly groups: string[];
  private readonly stats = new Map<number, Map<string, Tensor>>();
  private readonly rng: SeededRng;

  constructor(model: Model, options: SlimmableOptions) {
    const widths = [...new Set(options.widths)].sort((a, b) => a - b);
    if (widths.length === 0 || widths.some((w) => typeof w !== 'number' || !(w > 0 && w <= 1))) {
      throw new RsError('INVALID_ARGUMENT', `Slimmable widths must lie in (0, 1], got [${options.widths.join(', ')}].`);
    }
    if (Math.abs(widths[widths.length - 1] - 1) > TOL) throw new RsError('INVALID_ARGUMENT', 'Slimmable widths must include 1 (the full network).');
    for (const g of options.groups) model.group(g); // throws UNKNOWN_GROUP
    this.model = model;
    this.widths = widths;
    this.groups = [...options.groups];
    this.rng = createRng(options.seed ?? 0);
  }

  private checkWidth(width: number): number {
    const found = this.widths.find((w) => Math.abs(w - width) < TOL);
    if (found === undefined) {
      throw new RsError('INVALID_ARGUMENT', `Width ${String(width)} was not trained; trained widths: [${this.widths.join(', ')}].`, { width, widths: this.widths });
    }
    return found;
  }

  /** Units kept per group at `width`. */
  unitsAt(width: number): Map<string, number> {
    const w = this.checkWidth(width);
    return new Map(this.groups.map((g) => [g, Math.max(1, Math.ceil(w * this.model.group(g).size - TOL))]));
  }

  /** Parameter key -> [(axis, kept positions)] at `width`. */
  private cuts(width: number): Map<string, { axis: number; positions: number[] }[]> {
    const out = new Map<string, { axis: number; positions: number[] }[]>();
    for (const [g, k] of this.unitsAt(width)) {
      const group = this.model.group(g);
      if (k === group.size) continue;
      for (const m of group.params) {
        const positions = Array.from({ length: k }, (_, u) => unitPositions(m, u)).flat().sort((a, b) => a - b);
        out.set(m.param, [...(out.get(m.param) ?? []), { axis: m.axis, positions }]);
      }
    }
    return out;
  }

  private slicer(width: number): (key: string, value: Tensor) => Tensor {
    const cuts = this.cuts(width);
    const stats = this.stats.get(this.checkWidth(width));
    return (key, value) => {
      let v = stats?.get(key) ?? value;
      if (stats?.has(key)) return v;
      for (const { axis, positions } of cuts.get(key) ?? []) {
        const contiguous = positions.every((p, i) => p === positions[0] + i);
        if (contiguous) {
          const begin = v.shape.map((_, i) => (i === axis ? positions[0] : 0));
          const size = v.shape.map((d, i) => (i === axis ? positions.length : d));
          v = tf.slice(v, begin, size);
        } else v = tf.gather(v, tf.tensor1d(positions, 'int32'), axis);
      }
      return v;
    };
  }

  /** Parameters sliced to `width` (with that width's normalization statistics). Call inside tf.tidy. */
  params(width: number): Map<string, Tensor> {
    return this.model.forwardParams({ substitute: this.slicer(width) });
  }

  /** Logits at `width` (inference). The caller owns the result. */
  apply(x: Tensor, width: number): Tensor {
    return tf.tidy(() => {
      const result = execute(this.model.plan, [x], this.params(width), { training: false, rng: this.model.rng, targets: [this.model.plan.outputs[0]] });
      for (const t of result.state.values()) t.dispose();
      return result.outputs[0];
    });
  }

  /** Accuracy at `width` on labelled data, in batches of 500. */
  accuracy(x: Tensor, y: Int32Array, width: number): number {
    let hits = 0;
    const n = x.shape[0];
    for (let start = 0; start < n; start += 500) {
      const size = Math.min(500, n - start);
      const pred = tf.tidy(() => tf.argMax(this.apply(tf.slice(x, start, size), width), -1));
      const p = pred.dataSync();
      pred.dispose();
      for (let i = 0; i < size; i++) if (p[i] === y[start + i]) hits++;
    }
    return hits / n;
  }

  /**
   * One training step with the sandwich rule (Yu & Huang 2019): the largest and the smallest
   * width plus `randomWidths` others drawn from the trained widths; gradients are summed and
   * applied once. Each width's batchNorm statistics are updated from its own pass.
   * Returns the mean loss over the widths used.
   */
  step(x: Tensor, y: Tensor, optimizer: Optimizer, options: { randomWidths?: number } = {}): number {
    const inner = this.widths.slice(1, -1);
    const chosen = [this.widths[this.widths.length - 1], this.widths[0]];
    const extra = Math.min(options.randomWidths ?? 2, inner.length);
    const pool = [...inner];
    for (let i = 0; i < extra; i++) chosen.push(pool.splice(Math.floor(this.rng.next() * pool.length), 1)[0]);
    const out = this.model.plan.outputs[0];
    let total: Map<string, Tensor> | undefined;
    let lossSum = 0;
    // Each width's statistics are stored only once the update has been applied: a failed step
    // (bad targets, an optimizer that refuses) changes nothing and leaves no tensor behind.
    const pending: [number, Map<string, Tensor>][] = [];
    const release = (): void => {
      for (const [, states] of pending) for (const t of states.values()) t.dispose();
      if (total) for (const t of total.values()) t.dispose();
    };
    for (const width of chosen) {
      // Later widths see the full width's new statistics, as if they had been stored already.
      const full = pending.find(([w]) => w === 1 && w !== width)?.[1];
      const slicer = this.slicer(width);
      const slice = full ? (key: string, value: Tensor): Tensor => slicer(key, full.get(key) ?? value) : slicer;
      // Core's one gradient computation with the width's weight slicing as `substitute`: the
      // auxiliary losses of the layers that run are part of each width's loss.
      let g: Gradients;
      try {
        g = gradientsOf(this.model, (pass) => softmaxCrossEntropy(pass.run(x, { targets: [out] })[0], y), { substitute: slice });
      } catch (error) {
        release();
        throw error;
      }
      for (const map of [g.activations, g.activationGrads]) for (const t of map.values()) t.dispose();
      pending.push([width, g.state]);
      lossSum += g.loss;
      if (!Number.isFinite(g.loss)) {
        disposeGradients({ ...g, state: new Map() });
        release();
        throw new RsError('NON_FINITE', `The loss at width ${width} became ${String(g.loss)} at update ${this.model.optimizerStep + 1}; the model was left as it was before this update.`, {
          loss: g.loss,
          width,
          update: this.model.optimizerStep + 1,
        });
      }
      if (!total) total = g.grads;
      else {
        for (const [k, grad] of g.grads) {
          const previous = total.get(k);
          total.set(k, previous ? tf.add(previous, grad) : tf.clone(grad));
          previous?.dispose();
          grad.dispose();
        }
      }
    }
    try {
      optimizer.step(this.model, total as Map<string, Tensor>);
    } catch (error) {
      release();
      throw error;
    }
    for (const g of (total as Map<string, Tensor>).values()) g.dispose();
    for (const [width, states] of pending) this.storeStats(width, states);
    return lossSum / chosen.length;
  }

  /**
   * Re-estimates every width's batchNorm statistics exactly on `x` (post-training statistics,
   * Yu & Huang 2019): a training-mode pass per width records the batch mean and variance each
   * normalization layer sees. Weights are not changed. Use a few thousand training samples.
   *
   * @example
   * slim.recalibrate(trainX.slice(0, 2000));
   */
  recalibrate(x: Tensor): void {
    for (const width of this.widths) {
      const states = new Map<string, Tensor>();
      try {
        tf.tidy(() => {
          const result = execute(this.model.plan, [x], this.params(width), {
            training: true,
            rng: this.model.rng,
            targets: [this.model.plan.outputs[0]],
            intercept: (step, inputs, run) => {
              if (step.node.op !== 'batchNorm') return undefined;
              const axes = inputs[0].shape.slice(0, -1).map((_, i) => i);
              const { mean, variance } = tf.moments(inputs[0], axes);
              states.set(`${step.node.id}/movingMean`, tf.keep(mean));
              states.set(`${step.node.id}/movingVariance`, tf.keep(variance));
              return run(inputs);
            },
          });
          // The moving averages the layers would store themselves: not wanted here.
          for (const t of result.state.values()) t.dispose();
        });
      } catch (error) {
        for (const t of states.values()) t.dispose();
        throw error;
      }
      this.storeStats(width, states);
    }
  }

  private storeStats(width: number, states: Map<string, Tensor>): void {
    if (states.size === 0) return;
    const w = this.checkWidth(width);
    if (w === 1) {
      this.model.setParamValues(states);
      return;
    }
    const old = this.stats.get(w) ?? new Map<string, Tensor>();
    for (const [k, v] of states) {
      old.get(k)?.dispose();
      old.set(k, v);
    }
    this.stats.set(w, old);
  }

  /**
   * Orders every group's units by importance (L1 norm of the weights feeding each unit, largest
   * first) with core's permuteUnits, so narrow widths keep the most important units. Function
   * preserving at full width; per-width statistics are dropped (retrain or recalibrate).
   */
  orderByImportance(): void {
    const orders = this.groups.map((g) => {
      const group = this.model.group(g);
      const scores = new Float64Array(group.size);
      for (const m of group.params.filter((p) => p.role === 'out' && this.model.param(p.param).role === 'weight')) {
        const value = this.model.param(m.param).value;
        const abs = tf.tidy(() => {
          const a = tf.abs(value);
          const axes = value.shape.map((_, i) => i).filter((i) => i !== m.axis);
          return axes.length > 0 ? tf.sum(a, axes) : a;
        });
        const s = abs.dataSync();
        abs.dispose();
        for (let u = 0; u < group.size; u++) for (const p of unitPositions(m, u)) scores[u] += s[p];
      }
      return { g, order: Array.from({ length: group.size }, (_, i) => i).sort((a, b) => scores[b] - scores[a]) };
    });
    this.model.edit(
      (tx) => {
        for (const { g, order } of orders) tx.permuteUnits(g, order);
      },
      { technique: 'dynamic', reason: 'slimmable: order units by importance (L1)' },
    );
    this.clearStats();
  }

  private clearStats(): void {
    for (const m of this.stats.values()) for (const t of m.values()) t.dispose();
    this.stats.clear();
  }

  /** Releases the per-width statistics (not the model). */
  dispose(): void {
    this.clearStats();
  }
}
