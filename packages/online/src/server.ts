// The serving loop: answers requests from the current accepted version (batching concurrent
// ones), takes labelled feedback into telemetry, a replay buffer and a canary slice, has changes
// prepared by the worker process, commits accepted ones to the store and swaps them in
// atomically, and rolls a swap back when the labelled requests after it show a regression.
import { RsError, disposeRun, loadFromBuffer, saveToBuffer, tf, type Model, type OpRegistry } from '@rs/core';
import { LabelledRing } from './buffers';
import { checkPolicySpec, defaultPolicies, type PolicySpec } from './policy';
import type { FineTuneOptions, PrepareReply } from './prepare';
import { VersionStore, type OnlineEvent } from './store';
import { Telemetry, activationTargets } from './telemetry';
import { ChangeWorker, type WorkerLaunch } from './worker-pool';
import { RollbackWatch } from './rollback';
import { prometheusText } from './metrics';

export interface OnlineOptions {
  /** The store directory (versions, journal.jsonl, current.json). */
  dir: string;
  worker: WorkerLaunch;
  /** Registry for loading versions (plugin ops). */
  registry?: OpRegistry;
  /** Policies asked in order at each change (default: growOnNeed, pruneInactive, refresh). */
  policies?: PolicySpec[];
  /** Largest batch of concurrent requests run together (default 64). */
  maxBatch?: number;
  /** Labelled rows kept for fine-tuning (default 2048) and for the canary (default 512). */
  replaySize?: number;
  canarySize?: number;
  /** One labelled request in this many goes to the canary instead of the replay buffer (default 5). */
  canaryEvery?: number;
  /** Labelled requests the telemetry's accuracy is measured over (default 500). */
  window?: number;
  /** Measure activation rates on one served batch in this many (default 4). */
  activationEvery?: number;
  fineTune?: Partial<FineTuneOptions>;
  /**
   * Rollback: after a swap, the first `window` labelled requests served by the new version
   * (default 100) are also run on the previous version; if the new version's accuracy on them
   * is below the previous one's by more than `margin` (default 0.05), the swap is undone.
   */
  rollback?: { window?: number; margin?: number };
  /** Prepare a change automatically after this many labelled requests (default: never, call `reorganize`). */
  changeEvery?: number;
  /** Called with every event, after it is durable in the journal. */
  onEvent?: (event: OnlineEvent) => void;
}

/** The answer to one request. */
export interface Prediction {
  id: number;
  label: number;
  version: number;
}

interface Pending {
  id: number;
  row: Float32Array;
  start: number;
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
}

/** Wall-clock times (ms since the epoch, fractional) of a change: asked, prepared, swapped in. */
export interface ChangeTiming {
  start: number;
  prepared: number;
  /** When the commit began and when the new version was serving (accepted changes only). */
  commitStart?: number;
  committed?: number;
}

export type ChangeOutcome =
  | { kind: 'accepted'; version: number; reply: Extract<PrepareReply, { type: 'candidate' }>; timing: ChangeTiming }
  | { kind: 'rejected' | 'nothing' | 'refused' | 'workerFailed'; reply: PrepareReply; error?: RsError; timing: ChangeTiming };

const now = (): number => performance.timeOrigin + performance.now();

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new RsError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(value)}.`);
  return v;
}

/**
 * A served model that reorganizes itself. Open it on a store directory; a directory that already
 * holds versions resumes from the last accepted one and `initial` is ignored.
 *
 * @example
 * const server = await OnlineServer.open(model, { dir: 'served', worker: { setup: '/app/setup.mjs' } });
 * const { id, label } = await server.predict(pixels);
 * server.feedback(id, trueLabel);
 * await server.reorganize();
 */
export class OnlineServer {
  readonly store: VersionStore;
  readonly telemetry: Telemetry;
  readonly worker: ChangeWorker;
  readonly inputShape: number[];
  readonly classes: number;
  private readonly width: number;
  private model: Model;
  private served: number;
  private queue: Pending[] = [];
  private scheduled = false;
  private nextId = 0;
  private batches = 0;
  private recent = new Map<number, { row: Float32Array; label: number; version: number }>();
  private readonly replay: LabelledRing;
  private readonly canary: LabelledRing;
  private watch: RollbackWatch | undefined;
  private changing: Promise<ChangeOutcome> | undefined;
  private changeId = 0;
  private labelledSinceChange = 0;
  private closed = false;
  /** A commit's writes are under way: a rollback verdict waits for the next labelled request. */
  private committing = false;
  readonly counters = { swaps: 0, rollbacks: 0, refused: 0, rejected: 0, workerFailed: 0 };

  private constructor(
    private readonly options: OnlineOptions,
    store: VersionStore,
    model: Model,
    version: number,
  ) {
    this.store = store;
    this.model = model;
    this.served = version;
    const input = model.graph.inputs[0]!;
    if (model.graph.inputs.length !== 1 || input.shape.slice(1).some((d) => d === null)) {
      throw new RsError('INVALID_ARGUMENT', 'OnlineServer serves models with one input of fixed shape but the batch axis.');
    }
    this.inputShape = input.shape.slice(1) as number[];
    const out = model.validated.infos.get(model.graph.outputs[0]!)!.shape;
    this.classes = out[out.length - 1] as number;
    const width = this.inputShape.reduce((a, b) => a * b, 1);
    this.width = width;
    this.telemetry = new Telemetry(positive(options.window, 500, 'window'), this.classes);
    this.replay = new LabelledRing(positive(options.replaySize, 2048, 'replaySize'), width);
    this.canary = new LabelledRing(positive(options.canarySize, 512, 'canarySize'), width);
    this.worker = new ChangeWorker(options.worker);
  }

  static async open(initial: Model | undefined, options: OnlineOptions): Promise<OnlineServer> {
    if (typeof options !== 'object' || options === null || typeof options.worker?.setup !== 'string') {
      throw new RsError('INVALID_ARGUMENT', 'OnlineServer.open needs options.dir and options.worker.setup (a module that installs a backend in the worker process).');
    }
    for (const spec of options.policies ?? []) checkPolicySpec(spec);
    const store = new VersionStore(options.dir);
    const load = (bytes: Uint8Array) => loadFromBuffer(bytes, options.registry ? { registry: options.registry } : {});
    const current = store.current();
    let server: OnlineServer;
    if (current !== undefined) {
      server = new OnlineServer(options, store, load(store.readVersion(current)), current);
      server.log({ kind: 'restarted', serving: current });
    } else {
      if (initial === undefined) throw new RsError('INVALID_ARGUMENT', `${options.dir} holds no served model yet: pass the initial model.`);
      const bytes = new Uint8Array(saveToBuffer(initial));
      store.writeVersion(0, bytes);
      server = new OnlineServer(options, store, load(bytes), 0);
      server.log({ kind: 'initial', serving: 0, version: 0 });
      store.setCurrent(0);
    }
    return server;
  }

  /** The version being served. */
  get version(): number {
    return this.served;
  }

  /** The served model (read it; do not edit or dispose it). */
  get current(): Model {
    return this.model;
  }

  private log(event: Omit<OnlineEvent, 'time'>): OnlineEvent {
    const full = { time: new Date().toISOString(), ...event } as OnlineEvent;
    this.store.append(full);
    this.options.onEvent?.(full);
    return full;
  }

  /** Answers one request (one input row, flat, of the model's input size), batched with concurrent ones. */
  predict(input: ArrayLike<number>): Promise<Prediction> {
    if (this.closed) return Promise.reject(new RsError('INVALID_ARGUMENT', 'The server is closed.'));
    const width = this.width;
    if (input === null || typeof input !== 'object' || input.length !== width) {
      return Promise.reject(new RsError('DATA_MISMATCH', `predict takes one input of ${width} numbers, got ${input === null || typeof input !== 'object' ? typeof input : `${input.length}`}.`));
    }
    const row = Float32Array.from(input);
    if (!row.every(Number.isFinite)) return Promise.reject(new RsError('DATA_MISMATCH', 'predict: the input holds NaN or Infinity.'));
    return new Promise<Prediction>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, row, start: performance.now(), resolve, reject });
      if (this.queue.length >= positive(this.options.maxBatch, 64, 'maxBatch')) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.queue.length);
    if (batch.length === 0) return;
    const model = this.model;
    const version = this.served;
    try {
      const width = batch[0]!.row.length;
      const flat = new Float32Array(batch.length * width);
      batch.forEach((p, i) => flat.set(p.row, i * width));
      this.batches += 1;
      const measure = this.batches % positive(this.options.activationEvery, 4, 'activationEvery') === 0;
      const labels = tf.tidy(() => {
        const x = tf.tensor(flat, [batch.length, ...this.inputShape]);
        if (!measure) return tf.argMax(model.apply(x), -1);
        const targets = activationTargets(model);
        const run = model.run(x, { targets: [model.graph.outputs[0]!, ...targets.map((t) => t.node)] });
        const active = new Map<string, Float32Array>();
        targets.forEach((t, i) => {
          const a = run.outputs[i + 1]!;
          if (a.rank === 2) active.set(t.group, tf.sum(tf.cast(tf.greater(a, 0), 'float32'), 0).dataSync() as Float32Array);
        });
        this.telemetry.recordActivity(active, batch.length);
        const answer = tf.argMax(run.outputs[0]!, -1);
        disposeRun(run);
        return answer;
      });
      const values = labels.dataSync();
      labels.dispose();
      const end = performance.now();
      batch.forEach((p, i) => {
        this.telemetry.requests += 1;
        this.telemetry.recordLatency(end - p.start);
        this.recent.set(p.id, { row: p.row, label: values[i]!, version });
        p.resolve({ id: p.id, label: values[i]!, version });
      });
      while (this.recent.size > 8192) this.recent.delete(this.recent.keys().next().value as number);
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  /** The true label of an answered request: telemetry, replay buffer or canary, rollback check. */
  feedback(id: number, label: number): void {
    const seen = this.recent.get(id);
    if (seen === undefined) throw new RsError('INVALID_ARGUMENT', `feedback: request ${id} is unknown or too old (the last 8192 requests can take feedback).`);
    if (!Number.isInteger(label) || label < 0 || label >= this.classes) throw new RsError('INVALID_ARGUMENT', `feedback: the label must be an integer in [0, ${this.classes}), got ${label}.`);
    this.recent.delete(id);
    this.telemetry.recordOutcome(label, seen.label);
    const canaryEvery = positive(this.options.canaryEvery, 5, 'canaryEvery');
    if (this.telemetry.labelled % canaryEvery === 0) this.canary.push(seen.row, label);
    else this.replay.push(seen.row, label);
    if (this.watch !== undefined && seen.version === this.watch.version && this.watch.add(seen.row, label, seen.label) && !this.committing) this.finishWatch();
    this.labelledSinceChange += 1;
    const every = this.options.changeEvery;
    if (every !== undefined && this.labelledSinceChange >= every && this.changing === undefined) void this.reorganize().catch(() => undefined);
  }

  private finishWatch(): void {
    const watch = this.watch!;
    this.watch = undefined;
    const verdict = watch.verdict();
    if (verdict.regressed && this.served === watch.version) {
      const undone = this.model;
      this.model = watch.previous;
      this.served = watch.previousVersion;
      this.store.setCurrent(watch.previousVersion);
      this.counters.rollbacks += 1;
      this.telemetry.swapped();
      this.log({ kind: 'rolledBack', serving: watch.previousVersion, version: watch.version, reason: `accuracy on the ${verdict.count} labelled requests after the swap: ${verdict.after.toFixed(3)} against ${verdict.before.toFixed(3)} for version ${watch.previousVersion}`, details: verdict });
      undone.dispose();
    } else {
      watch.previous.dispose();
    }
  }

  /**
   * Prepares one change in the worker and, if the policy's acceptance rule is met, commits and
   * swaps it in. One change at a time: a call while one is under way returns that one.
   * `options.policies` replaces the server's policies for this change.
   */
  reorganize(options: { policies?: PolicySpec[] } = {}): Promise<ChangeOutcome> {
    if (this.closed) return Promise.reject(new RsError('INVALID_ARGUMENT', 'The server is closed.'));
    if (this.changing) return this.changing;
    try {
      for (const spec of options.policies ?? []) checkPolicySpec(spec);
    } catch (error) {
      return Promise.reject(error);
    }
    this.labelledSinceChange = 0;
    this.changing = this.prepareAndCommit(options.policies ?? this.options.policies ?? [...defaultPolicies]).finally(() => {
      this.changing = undefined;
    });
    return this.changing;
  }

  private async prepareAndCommit(policies: PolicySpec[]): Promise<ChangeOutcome> {
    const base = this.served;
    const timing: ChangeTiming = { start: now(), prepared: 0 };
    const reply = await this.worker.prepare({
      type: 'prepare',
      id: ++this.changeId,
      model: new Uint8Array(saveToBuffer(this.model)),
      policies,
      telemetry: this.telemetry.snapshot(this.served),
      inputShape: this.inputShape,
      replay: this.replay.rows(),
      canary: this.canary.rows(),
      fineTune: { steps: 60, batchSize: 64, learningRate: 1e-3, seed: this.changeId, ...this.options.fineTune },
    });
    timing.prepared = now();
    if (this.closed) return { kind: 'workerFailed', reply, timing };
    if (reply.type === 'nothing') return { kind: 'nothing', reply, timing };
    if (reply.type === 'refused') {
      this.counters.refused += 1;
      const error = new RsError(reply.error.code as never, `policy '${reply.policy}' proposed an edit that core refused: ${reply.error.message}`, reply.error.details ?? {});
      this.log({ kind: 'refused', serving: this.served, policy: reply.policy, error: { code: reply.error.code, message: reply.error.message } });
      return { kind: 'refused', reply, error, timing };
    }
    if (reply.type === 'failed') {
      this.counters.workerFailed += 1;
      this.log({ kind: 'workerFailed', serving: this.served, error: reply.error });
      return { kind: 'workerFailed', reply, timing };
    }
    if (!reply.accepted || this.served !== base) {
      this.counters.rejected += 1;
      this.log({ kind: 'rejected', serving: this.served, policy: reply.policy, reason: reply.reason, details: { canary: reply.canary, ...(this.served !== base ? { stale: true } : {}) } });
      return { kind: 'rejected', reply, timing };
    }
    timing.commitStart = now();
    const version = await this.commit(reply);
    timing.committed = now();
    return { kind: 'accepted', version, reply, timing };
  }

  /**
   * Durable first (file, journal line, pointer; written asynchronously, so that requests keep
   * being answered meanwhile), then the in-memory swap: one assignment.
   */
  private async commit(reply: Extract<PrepareReply, { type: 'candidate' }>): Promise<number> {
    const version = this.store.lastVersion() + 1;
    const next = loadFromBuffer(reply.model, this.options.registry ? { registry: this.options.registry } : {});
    this.committing = true;
    try {
      await this.store.writeVersionAsync(version, reply.model);
      const event = { time: new Date().toISOString(), kind: 'accepted', serving: version, version, policy: reply.policy, reason: reply.reason, details: { from: this.served, canary: reply.canary, params: reply.params, flopsPerRequest: reply.flopsPerRow, trainRows: reply.trainRows, entry: reply.entry } } as OnlineEvent;
      await this.store.appendAsync(event);
      await this.store.setCurrentAsync(version);
      this.options.onEvent?.(event);
    } catch (error) {
      next.dispose();
      throw error;
    } finally {
      this.committing = false;
    }
    const previous = this.model;
    const previousVersion = this.served;
    this.model = next;
    this.served = version;
    this.counters.swaps += 1;
    this.telemetry.swapped();
    if (this.watch !== undefined) this.watch.previous.dispose();
    const rollback = this.options.rollback ?? {};
    this.watch = new RollbackWatch(version, previous, previousVersion, positive(rollback.window, 100, 'rollback.window'), rollback.margin ?? 0.05, this.inputShape);
    return version;
  }

  /** The event journal. */
  history(): OnlineEvent[] {
    return this.store.events();
  }

  /** Prometheus text exposition of the server's counters and telemetry. */
  metrics(): string {
    const counts = this.model.counts();
    return prometheusText(this.telemetry.snapshot(this.served), this.counters, { version: this.served, params: counts.params, flops: counts.flops });
  }

  /** Stops the worker, waits for a change under way, releases the models. */
  async close(): Promise<void> {
    if (this.closed) return;
    const changing = this.changing;
    this.closed = true;
    await this.worker.close();
    if (changing) await changing.catch(() => undefined);
    this.flush();
    this.watch?.previous.dispose();
    this.watch = undefined;
    this.model.dispose();
  }
}
