// Bounded buffers of recent labelled traffic: the replay buffer (fine-tuning) and the canary slice
// (held out: never trained on, used to judge a candidate).
import type { LabelledRows } from './prepare';

/** A ring of labelled rows of fixed width. */
export class LabelledRing {
  private readonly x: Float32Array;
  private readonly y: Int32Array;
  private next = 0;
  size = 0;

  constructor(
    readonly capacity: number,
    private readonly width: number,
  ) {
    this.x = new Float32Array(capacity * width);
    this.y = new Int32Array(capacity);
  }

  push(row: Float32Array, label: number): void {
    this.x.set(row, this.next * this.width);
    this.y[this.next] = label;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** A copy of the rows held (oldest first). */
  rows(): LabelledRows {
    const start = this.size < this.capacity ? 0 : this.next;
    const x = new Float32Array(this.size * this.width);
    const y = new Int32Array(this.size);
    for (let i = 0; i < this.size; i += 1) {
      const from = (start + i) % this.capacity;
      x.set(this.x.subarray(from * this.width, (from + 1) * this.width), i * this.width);
      y[i] = this.y[from]!;
    }
    return { x, y, rows: this.size };
  }
}
