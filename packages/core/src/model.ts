import { tf, type Tensor } from './tf';
import { RsError } from './errors';
import type { GraphDef } from './ir/types';
import { splitParamKey } from './ir/types';
import { validateGraph, type ValidatedGraph } from './ir/validate';
import { checkJsonSafe } from './ir/json-safe';
import { applyMask } from './ir/mask';
import { recordingGradients } from './train/tape';
import { defaultRegistry, type OpRegistry } from './ops/registry';
import { analyzeUnits, type UnitAnalysis, type UnitGroup } from './units/analyze';
import { compile, execute, type Plan, type RunOptions } from './exec/executor';
import { countModel, type ModelCounts } from './count';
import { createRng, type SeededRng } from './rng';
import { initialParams } from './model-init';
import type { ApplyOptions, CreateModelOptions, ModelState, ParamEntry, RunOutput } from './model-types';

export type { ApplyOptions, CreateModelOptions, ModelState, ParamEntry, RunOutput } from './model-types';
import type { JournalEntry } from './edit/journal';
import { checkSingleInstance, requireBackend } from './instance';
import { runTransaction, type EditMeta, type Transaction } from './edit/transaction';

/** Derived from the state; rebuilt after every commit. */
interface Compiled {
  validated: ValidatedGraph;
  plan: Plan;
  analysis?: UnitAnalysis;
  counts?: ModelCounts;
}

/** Number of kept weights of a mask (undefined without one). */
function maskSum(mask: Tensor | undefined): number | undefined {
  return mask ? tf.tidy(() => tf.sum(mask).dataSync()[0]) : undefined;
}

function cloneGraph(graph: GraphDef): GraphDef {
  return JSON.parse(JSON.stringify(graph)) as GraphDef;
}

/**
 * A network whose structure is data: a JSON graph plus parameters, changed only through
 * transactional edits that are recorded in a journal.
 *
 * @example
 * const model = Model.create(lenet300(), { seed: 1 });
 * const logits = model.apply(tf.zeros([2, 784]));
 * model.edit((tx) => tx.removeUnits('fc1', [0, 1]), { technique: 'manual', reason: 'demo' });
 */
export class Model {
  readonly registry: OpRegistry;
  /** Generator for dropout and other randomness in forward passes. */
  readonly rng: SeededRng;
  private state: ModelState;
  private compiled: Compiled;
  private disposed = false;
  private editing = false;
  private versionCounter = 0;

  private constructor(registry: OpRegistry, state: ModelState, compiled: Compiled, rng: SeededRng) {
    this.registry = registry;
    this.state = state;
    this.compiled = compiled;
    this.rng = rng;
  }

  /** Validates `graph`, initialises parameters (seeded), and returns a model. */
  static create(graph: GraphDef, options: CreateModelOptions = {}): Model {
    checkSingleInstance();
    requireBackend('Model.create');
    const registry = options.registry ?? defaultRegistry;
    checkJsonSafe(graph, 'graph');
    const own = cloneGraph(graph);
    const validated = validateGraph(own, registry);
    const rng = createRng(options.seed ?? 0);
    const params = initialParams(validated, options.params ?? {}, rng);
    const state: ModelState = { graph: own, params, slots: new Map(), journal: [], optimizerSteps: new Map() };
    return new Model(registry, state, { validated, plan: compile(own, validated, registry) }, rng);
  }

  /**
   * @internal Builds a model from a complete, already-checked state (used by load); `rngState`
   * resumes the generator where a saved model left it.
   */
  static fromState(state: ModelState, registry: OpRegistry, seed = 0, rngState?: number[]): Model {
    checkSingleInstance();
    const validated = validateGraph(state.graph, registry);
    return new Model(registry, state, { validated, plan: compile(state.graph, validated, registry) }, createRng(seed, rngState));
  }

  private alive(): void {
    if (this.disposed) throw new RsError('INVALID_ARGUMENT', 'This model was disposed.');
  }

  /** Refuses state changes while an edit callback runs: the draft holds the state's tensors. */
  private mutable(what: string): void {
    this.alive();
    if (this.editing) {
      throw new RsError('EDIT_IN_PROGRESS', `${what} was called inside a model.edit callback; make every change of one edit through its transaction (tx), and train or edit again after the callback returns.`, {
        operation: what,
      });
    }
  }

  /** The graph (a copy: change it through `edit`). */
  get graph(): GraphDef {
    return cloneGraph(this.state.graph);
  }

  /** Increases with every committed edit; compiled plans are cached per version. */
  get version(): number {
    return this.versionCounter;
  }

  /** Committed edits, oldest first. */
  get journal(): readonly JournalEntry[] {
    return this.state.journal;
  }

  /** The compiled plan of the current graph (low-level step API for schedulers). */
  get plan(): Plan {
    return this.compiled.plan;
  }

  /** @internal The state, for the transaction, training and IO modules. */
  get internalState(): ModelState {
    return this.state;
  }

  /** @internal Validated graph with shapes of every tensor. */
  get validated(): ValidatedGraph {
    return this.compiled.validated;
  }

  /** Parameter keys (`node/name`) in graph order. */
  paramKeys(): string[] {
    return [...this.state.params.keys()];
  }

  /** The parameter entry for `key` (value, mask, trainable, role). Do not dispose its tensors. */
  param(key: string): ParamEntry {
    const entry = this.state.params.get(key);
    if (!entry) throw new RsError('UNKNOWN_PARAM', `No parameter '${key}'. Known: ${this.paramKeys().join(', ')}.`, { param: key });
    return entry;
  }

  /**
   * The parameters a forward pass uses: every value times its mask. This is the one place where
   * masks apply to a forward pass. `overrides` replace some values before masking (the tensors
   * being differentiated, in a gradient step); `substitute` then transforms each masked value
   * (slimmable execution slices weights to a width); `keys` limits the map to some parameters.
   * Call inside a tidy scope.
   *
   * @example
   * const logits = tf.tidy(() => execute(model.plan, [x], model.forwardParams(), { training: false, rng: model.rng }).outputs[0]);
   */
  forwardParams(options: { overrides?: ReadonlyMap<string, Tensor>; substitute?: (key: string, value: Tensor) => Tensor; keys?: Iterable<string> } = {}): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const key of options.keys ?? this.state.params.keys()) {
      const entry = this.param(key);
      const override = options.overrides?.get(key);
      // Stored values are masked already (see applyMask): the product matters for gradients and overrides only.
      const masked = override === undefined && !recordingGradients() ? entry.value : applyMask(override ?? entry.value, entry.mask);
      out.set(key, options.substitute ? options.substitute(key, masked) : masked);
    }
    return out;
  }

  /** Parameters with masks applied (same as `forwardParams()`). Call inside a tidy scope. */
  maskedParams(): Map<string, Tensor> {
    return this.forwardParams();
  }

  /** Unit groups of the current graph (derived from op unit declarations). */
  groups(): UnitGroup[] {
    return this.analysis().groups;
  }

  /** The group a node's units belong to (`'fc1'`), or a named source (`'attn:heads'`). */
  group(id: string): UnitGroup {
    const group = this.analysis().byId.get(id);
    if (!group) {
      const known = this.groups().filter((g) => !g.frozen).map((g) => g.id);
      throw new RsError('UNKNOWN_GROUP', `No unit group '${id}'. Editable groups: ${known.join(', ') || 'none'}.`, { group: id });
    }
    return group;
  }

  private analysis(): UnitAnalysis {
    this.alive();
    this.compiled.analysis ??= analyzeUnits(this.state.graph, this.registry, this.compiled.validated.infos);
    return this.compiled.analysis;
  }

  /** Parameter and FLOP counts per node and in total (FLOPs for one sample). */
  counts(): ModelCounts {
    this.alive();
    this.compiled.counts ??= countModel(this.compiled.validated, this.registry, (key) => maskSum(this.state.params.get(key)?.mask));
    return this.compiled.counts;
  }

  /**
   * Runs the model; returns the first output (or the first target).
   *
   * @example
   * const y = model.apply(x); // y is owned by the caller
   */
  apply(inputs: Tensor | Tensor[], options: ApplyOptions = {}): Tensor {
    this.alive();
    requireBackend('model.apply');
    const feeds = Array.isArray(inputs) ? inputs : [inputs];
    return tf.tidy(() => {
      const result = execute(this.compiled.plan, feeds, this.forwardParams(), this.runOptions(options));
      for (const value of result.state.values()) value.dispose();
      return result.outputs[0];
    });
  }

  /** All outputs (or targets), auxiliary losses, metrics and activation taps of one forward pass. */
  run(inputs: Tensor | Tensor[], options: ApplyOptions = {}): RunOutput {
    this.alive();
    const feeds = Array.isArray(inputs) ? inputs : [inputs];
    const sink = { activations: new Map<string, Tensor>(), gradients: new Map<string, Tensor>() };
    try {
      const kept: { outputs: Tensor[]; losses: Map<string, Tensor>; metrics: Map<string, Tensor> } = tf.tidy(() => {
        const result = execute(this.compiled.plan, feeds, this.forwardParams(), { ...this.runOptions(options), tapSink: sink });
        for (const value of result.state.values()) value.dispose();
        const keep = <T extends Tensor>(t: T): T => tf.keep(t);
        return {
          outputs: result.outputs.map(keep),
          losses: new Map([...result.losses].map(([k, v]) => [k, keep(v)])),
          metrics: new Map([...result.metrics].map(([k, v]) => [k, keep(v)])),
        } as never;
      });
      return { ...kept, activations: sink.activations };
    } catch (error) {
      for (const t of sink.activations.values()) t.dispose();
      throw error;
    }
  }

  private runOptions(options: ApplyOptions): RunOptions {
    return {
      training: options.training ?? false,
      rng: this.rng,
      taps: options.taps,
      ...(options.targets ? { targets: options.targets } : {}),
      ...(options.alias ? { alias: options.alias } : {}),
      ...(options.intercept ? { intercept: options.intercept } : {}),
    };
  }

  /** Forward pass over `x` in batches (inference), concatenated. */
  predict(x: Tensor, options: { batchSize?: number } = {}): Tensor {
    const batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RsError('INVALID_ARGUMENT', `predict: batchSize must be a positive integer, got ${String(options.batchSize)}.`);
    if (!(x instanceof tf.Tensor)) throw new RsError('INVALID_ARGUMENT', `predict takes a tensor, got ${x === null ? 'null' : typeof x}.`);
    const n = x.shape[0];
    if (n <= batchSize) return this.apply(x);
    const parts: Tensor[] = [];
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      parts.push(tf.tidy(() => this.apply(tf.slice(x, start, size))));
    }
    const out = tf.concat(parts, 0);
    for (const p of parts) p.dispose();
    return out;
  }

  /**
   * Applies structural changes as one transaction: the whole graph is validated before commit;
   * if anything throws, the model is exactly as before. Returns the journal entry.
   *
   * @example
   * model.edit((tx) => { tx.removeUnits('fc1', [3, 7]); }, { technique: 'prune', reason: 'L1 < 1e-3' });
   */
  edit(body: (tx: Transaction) => void, meta: EditMeta = {}): JournalEntry {
    this.mutable('model.edit');
    const before = this.counts();
    const rngState = this.rng.state();
    this.editing = true;
    let committed = false;
    try {
      const result = runTransaction(this, body, meta, before, (state, validated) => {
        // Everything derived from the new state is computed before the commit, so that a
        // failure here (a plugin op's count, a plan) still leaves the model untouched.
        const plan = compile(state.graph, validated, this.registry);
        const counts = countModel(validated, this.registry, (key) => maskSum(state.params.get(key)?.mask));
        return { plan, counts };
      });
      this.state = result.state;
      this.compiled = { validated: result.validated, plan: result.derived.plan, counts: result.derived.counts };
      this.versionCounter += 1;
      const entry = result.finishEntry(result.derived.counts);
      this.state.journal = [...this.state.journal, entry];
      committed = true;
      return entry;
    } finally {
      this.editing = false;
      // A failed edit leaves the model exactly as it was, its generator included.
      if (!committed) this.rng.restore(rngState);
    }
  }

  /** @internal Replaces parameter values in place (training updates); old tensors are disposed. */
  setParamValues(values: Map<string, Tensor>): void {
    this.mutable('setParamValues');
    for (const key of values.keys()) {
      if (!this.state.params.has(key)) throw new RsError('UNKNOWN_PARAM', `No parameter '${key}'.`, { param: key });
    }
    for (const [key, value] of values) {
      const entry = this.state.params.get(key) as ParamEntry;
      if (entry.value !== value) entry.value.dispose();
      entry.value = value;
    }
    this.compiled.counts = undefined;
  }

  /** Optimizer slots of `key` (e.g. Adam's `m` and `v`); empty before its first update. Do not dispose. */
  optimizerSlots(key: string): ReadonlyMap<string, Tensor> {
    return this.state.slots.get(key) ?? new Map();
  }

  /**
   * The most optimizer updates any parameter has had since the optimizer state was last reset
   * (with one optimizer, the number of updates). See `optimizerStepOf` for one parameter.
   */
  get optimizerStep(): number {
    let most = 0;
    for (const n of this.state.optimizerSteps.values()) most = Math.max(most, n);
    return most;
  }

  /** Optimizer updates applied to parameter `key` (Adam's bias correction uses it); 0 before the first. */
  optimizerStepOf(key: string): number {
    return this.state.optimizerSteps.get(key) ?? 0;
  }

  /**
   * @internal Commits one optimizer update atomically: new parameter values and slots (both
   * owned by the model from now on; replaced tensors are disposed), and one more update counted
   * for every parameter in `values`.
   */
  commitOptimizerUpdate(values: Map<string, Tensor>, slots: Map<string, Map<string, Tensor>>): void {
    this.mutable('an optimizer update');
    for (const key of [...values.keys(), ...slots.keys()]) {
      if (!this.state.params.has(key)) throw new RsError('UNKNOWN_PARAM', `No parameter '${key}'.`, { param: key });
    }
    this.setParamValues(values);
    for (const [key, updated] of slots) {
      const current = this.state.slots.get(key) ?? new Map<string, Tensor>();
      for (const [name, t] of updated) {
        const old = current.get(name);
        if (old && old !== t) old.dispose();
        current.set(name, t);
      }
      this.state.slots.set(key, current);
    }
    for (const key of values.keys()) this.state.optimizerSteps.set(key, this.optimizerStepOf(key) + 1);
  }

  /** Drops optimizer state (moments and the step count), e.g. before training with a fresh optimizer. */
  resetOptimizerState(): void {
    this.mutable('resetOptimizerState');
    for (const slots of this.state.slots.values()) for (const t of slots.values()) t.dispose();
    this.state.slots = new Map();
    this.state.optimizerSteps = new Map();
  }

  /** Releases every tensor the model holds. */
  dispose(): void {
    if (this.disposed) return;
    this.mutable('dispose');
    for (const entry of this.state.params.values()) {
      entry.value.dispose();
      entry.mask?.dispose();
    }
    for (const slots of this.state.slots.values()) for (const t of slots.values()) t.dispose();
    this.state.slots = new Map();
    this.disposed = true;
  }
}

/** Disposes every tensor in a `RunOutput`. */
export function disposeRun(run: RunOutput): void {
  for (const t of run.outputs) t.dispose();
  for (const t of run.losses.values()) t.dispose();
  for (const t of run.metrics.values()) t.dispose();
  for (const t of run.activations.values()) t.dispose();
}

export { splitParamKey };
