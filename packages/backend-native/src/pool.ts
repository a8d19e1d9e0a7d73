/**
 * Reuse of tensor storage. Every kernel output is a new typed array, and a typed array's memory
 * returns to the allocator only when V8 collects it: a training step of the char transformer
 * allocates about 200 MB of outputs, each zero-filled on allocation and counted as external
 * memory that drives garbage collection. The pool keeps the float32 arrays of deleted tensors
 * and hands them to native kernels' outputs of the same length, which native code overwrites
 * completely (or zeroes first when it accumulates).
 *
 * An array is reused only when nothing else can still see it: it was allocated here (never an
 * array the user passed to `tf.tensor`), it was never handed out by `dataSync`/`data` (the cpu
 * backend returns its storage itself, not a copy), and no other tensor shares its buffer (a cpu
 * kernel such as a contiguous Slice returns a view of its input). The backend reports those
 * three events to `disown`.
 */

/**
 * Arrays shorter than this are left to the allocator. Small arrays are not cheap in Node 20: a
 * new Float32Array(300) cost 2.9 us here (its memory is allocated outside the JS heap and
 * tracked for garbage collection), more than the native ReLU on it; a reuse costs about 0.1 us.
 * Only arrays of a few elements (loss values, scalars) are left out.
 */
const MIN_LENGTH = 8;

/** The most bytes kept for reuse unless install's `poolBytes` says otherwise. */
export const DEFAULT_POOL_BYTES = 256 * 1024 * 1024;

export class StoragePool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Buffers allocated by `take` that have not escaped. */
  private readonly owned = new WeakSet<ArrayBufferLike>();
  private bytes = 0;
  reused = 0;
  allocated = 0;

  constructor(public maxBytes: number) {}

  /** A float32 array of `length` elements (contents undefined unless `zero`). */
  take(length: number, zero = false): Float32Array {
    if (length < MIN_LENGTH) return new Float32Array(length);
    const recycled = this.free.get(length)?.pop();
    if (recycled) {
      this.bytes -= recycled.byteLength;
      this.reused++;
      if (zero) recycled.fill(0);
      return recycled;
    }
    const fresh = new Float32Array(length);
    this.owned.add(fresh.buffer);
    this.allocated++;
    return fresh;
  }

  /** Whether `buffer` is one the pool may still reuse. */
  owns(buffer: ArrayBufferLike): boolean {
    return this.owned.has(buffer);
  }

  /** `values` may be seen from outside the tensor that stores it: never reuse its buffer. */
  disown(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.owned.delete(values.buffer);
  }

  /** The storage of a deleted tensor: kept for reuse when it is the whole of an owned buffer. */
  give(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.owns(values.buffer)) return;
    if (values.byteOffset !== 0 || values.byteLength !== values.buffer.byteLength) return;
    if (this.bytes + values.byteLength > this.maxBytes) return;
    let list = this.free.get(values.length);
    if (!list) this.free.set(values.length, (list = []));
    list.push(values);
    this.bytes += values.byteLength;
  }

  /** Drops every kept array (they are collected with the rest of the garbage). */
  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }

  get keptBytes(): number {
    return this.bytes;
  }
}
