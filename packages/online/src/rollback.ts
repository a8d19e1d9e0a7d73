// The rollback window after a swap: the first `window` labelled requests served by the new
// version are kept, then run once on the previous version (kept loaded until the verdict), and
// the two accuracies on the same requests are compared. Comparing on the same requests makes the
// check immune to drift in the traffic itself.
import { tf, type Model } from '@rs/core';

export interface RollbackVerdict {
  [key: string]: unknown;
  count: number;
  /** Accuracy of the previous version and of the new one on the window's requests. */
  before: number;
  after: number;
  margin: number;
  regressed: boolean;
}

export class RollbackWatch {
  private rows: Float32Array[] = [];
  private labels: number[] = [];
  private answers: number[] = [];

  constructor(
    readonly version: number,
    readonly previous: Model,
    readonly previousVersion: number,
    readonly window: number,
    readonly margin: number,
    private readonly inputShape: number[],
  ) {}

  /** Adds one labelled request served by the new version; true when the window is full. */
  add(row: Float32Array, label: number, answered: number): boolean {
    this.rows.push(row);
    this.labels.push(label);
    this.answers.push(answered);
    return this.rows.length >= this.window;
  }

  verdict(): RollbackVerdict {
    const n = this.rows.length;
    const width = this.rows[0]?.length ?? 0;
    const flat = new Float32Array(n * width);
    this.rows.forEach((r, i) => flat.set(r, i * width));
    const old = tf.tidy(() => tf.argMax(this.previous.apply(tf.tensor(flat, [n, ...this.inputShape])), -1));
    const oldAnswers = old.dataSync();
    old.dispose();
    let before = 0;
    let after = 0;
    for (let i = 0; i < n; i += 1) {
      if (oldAnswers[i] === this.labels[i]) before += 1;
      if (this.answers[i] === this.labels[i]) after += 1;
    }
    before /= Math.max(1, n);
    after /= Math.max(1, n);
    return { count: n, before, after, margin: this.margin, regressed: after < before - this.margin };
  }
}
