import { tf, type Tensor } from '../tf';
import type { DType, ParamSpec, TensorInfo } from '../ir/types';
import { defaultRegistry } from '../ops/registry';
import type { InferContext, OpSchema } from '../ops/schema';
import { forwardContext } from '../exec/executor';
import { valueAndGrads } from '../train/tape';
import { createRng } from '../rng';
import { RsError, formatShape } from '../errors';
/**
 * The backend conformance suite: every op of a registry, forward and gradients, on a tested
 * backend against a reference backend (tinygrad's habit: every op on every device against one
 * reference). Plain functions, no test runner, so any backend package (ours or a third party's)
 * runs it from its own tests.
 */
import type { CheckConformanceOptions, ConformanceCase, ConformanceResult, ConformanceTensorReport } from './conformance-types';

export type * from './conformance-types';
export { conformanceCases } from './conformance-cases';

type Values = Float32Array | Int32Array | Uint8Array;

/** The data of a case, drawn once in JavaScript and copied onto each backend. */
interface CaseData {
  inputs: { shape: number[]; dtype: DType; values: Values }[];
  params: { name: string; spec: ParamSpec; values: Float32Array }[];
  output: TensorInfo;
  /** Seeds R, the weights of the loss sum(output * R), drawn once the output size is known. */
  weightSeed: number;
}

interface Evaluation {
  tensors: Map<string, { shape: number[]; values: Values }>;
  error?: string;
  leaked: number;
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function prepare(schema: OpSchema<any>, c: ConformanceCase): CaseData {
  const fail = (code: 'SHAPE_MISMATCH' | 'INVALID_ATTRS') => (message: string): never => {
    throw new RsError('INVALID_ARGUMENT', `conformance case '${c.name}' is not valid for op '${c.op}' (${code}): ${message}`, { op: c.op, case: c.name });
  };
  const ctx: InferContext = { nodeId: 'conformance', fail: fail('SHAPE_MISMATCH'), failAttrs: fail('INVALID_ATTRS') };
  const infos: TensorInfo[] = c.inputs.map((x) => ({ shape: [...x.shape], dtype: x.dtype }));
  const output = schema.infer(c.attrs, infos, ctx);
  const rng = createRng(c.seed);
  const inputs = c.inputs.map((x) => {
    const n = sizeOf(x.shape);
    const values: Values =
      x.dtype === 'int32' ? Int32Array.from({ length: n }, () => rng.int((x.maxValue ?? 9) + 1)) : Float32Array.from({ length: n }, () => rng.normal());
    return { shape: [...x.shape], dtype: x.dtype, values };
  });
  // Not the ops' initializers: zero biases and unit gammas would let a wrong broadcast or a
  // swapped operand pass the forward comparison. Uniform in [-1, 1]; `state` params (batchNorm's
  // moving variance) in [0.5, 1.5], which is valid for both statistics.
  const specs = schema.params?.(c.attrs, infos) ?? {};
  const params = Object.keys(specs).map((name) => {
    const spec = specs[name];
    const state = spec.role === 'state';
    return { name, spec, values: Float32Array.from({ length: sizeOf(spec.shape) }, () => (state ? 0.5 + rng.next() : 2 * rng.next() - 1)) };
  });
  return { inputs, params, output, weightSeed: rng.int(2 ** 30) };
}

/**
 * Runs the case on the active backend: the output, the gradients of
 * L = sum(output * R) (+ the op's auxiliary losses) with respect to every float input and every
 * param, the new `state` values, losses and metrics, all copied out as arrays.
 */
function evaluate(schema: OpSchema<any>, c: ConformanceCase, data: CaseData): Evaluation {
  const tensors = new Map<string, { shape: number[]; values: Values }>();
  const record = (key: string, t: Tensor): void => {
    tensors.set(key, { shape: [...t.shape], values: (t.dataSync() as Values).slice() });
  };
  const before = tf.memory().numTensors;
  // New state values are kept by the context: released in `finally` whatever happens.
  const sink = { losses: new Map<string, Tensor>(), metrics: new Map<string, Tensor>(), state: new Map<string, Tensor>() };
  let error: string | undefined;
  try {
    tf.tidy(() => {
      const inputs = data.inputs.map((x) => tf.tensor(x.values, x.shape, x.dtype));
      const params = data.params.map((p) => tf.tensor(p.values, p.spec.shape, 'float32'));
      const named = Object.fromEntries(data.params.map((p, k) => [p.name, params[k]]));
      // The library's own context: what ops report lands in `sink`, keyed `conformance/<name>`.
      // The same generator on both backends: ops that draw seeds (dropout) draw the same ones.
      const ctx = forwardContext('conformance', c.training, createRng((c.seed ^ 0x2545f491) >>> 0), sink);
      const short = (key: string): string => key.slice('conformance/'.length);
      const loss = (): Tensor => {
        const y = schema.forward(inputs, named, c.attrs, ctx);
        record('output', y);
        for (const [key, value] of sink.losses) record(`loss ${short(key)}`, value);
        for (const [key, value] of sink.metrics) record(`metric ${short(key)}`, value);
        const same = y.shape.length === data.output.shape.length && y.shape.every((d, i) => d === data.output.shape[i]);
        if (!same || y.dtype !== data.output.dtype) {
          throw new Error(`output ${formatShape(y.shape)} ${y.dtype} differs from the op's inferred ${formatShape(data.output.shape)} ${data.output.dtype}`);
        }
        if (y.dtype !== 'float32') return y;
        const r = createRng(data.weightSeed);
        const weights = tf.tensor(Float32Array.from({ length: y.size }, () => r.normal()), y.shape, 'float32');
        let total = tf.sum(tf.mul(y, weights));
        for (const value of sink.losses.values()) total = tf.add(total, tf.sum(value));
        return total;
      };
      const floatInputs = inputs.map((x, i) => (x.dtype === 'float32' ? i : -1)).filter((i) => i >= 0);
      const targets = [...floatInputs.map((i) => inputs[i]), ...params];
      if (data.output.dtype !== 'float32' || targets.length === 0) {
        loss();
      } else {
        // Core's gradient call allows targets that the loss does not reach (batchNorm's moving
        // statistics in training mode) and releases the tape if the op throws.
        // Which targets have a gradient is compared between the backends too.
        const { grads } = valueAndGrads(loss, targets);
        grads.forEach((g, k) => {
          if (!g) return;
          record(k < floatInputs.length ? `d input ${floatInputs[k]}` : `d param ${data.params[k - floatInputs.length].name}`, g);
        });
      }
      for (const [key, value] of sink.state) record(`state ${short(key)}`, value);
    });
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    tf.dispose([...sink.state.values()]);
  }
  return { tensors, error, leaked: tf.memory().numTensors - before };
}

/** Throws RsError NO_BACKEND unless `name` is registered and initialised. */
function checkReady(name: string): void {
  if (!tf.findBackend(name)) {
    const registered = tf.engine().backendNames();
    const why = registered.includes(name)
      ? 'it is registered but still initialising; await its install() (or tf.setBackend) before checking'
      : `it is not registered (registered: ${registered.join(', ') || 'none'}); install it first`;
    throw new RsError('NO_BACKEND', `conformance: backend '${name}' is not ready: ${why}.`, { backend: name });
  }
}

/** Makes `name` the active backend, synchronously (see `checkReady`). */
function activate(name: string): void {
  if (tf.getBackend() === name) return;
  checkReady(name);
  // setBackend only awaits while a backend initialises; for an initialised one it switches at once.
  void tf.setBackend(name);
  if (tf.getBackend() !== name) throw new RsError('NO_BACKEND', `conformance: could not switch to backend '${name}'.`, { backend: name });
}

const unravel = (index: number, shape: readonly number[]): number[] => {
  const out = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    out[axis] = index % shape[axis];
    index = Math.floor(index / shape[axis]);
  }
  return out;
};

const show = (x: number): string => (Number.isFinite(x) && x !== 0 ? String(Number(x.toPrecision(6))) : String(x));

/**
 * Runs one case on `backend` and on `reference` (default 'cpu') and compares, elementwise with
 * |tested - reference| <= atol + rtol * |reference| (rtol 1e-4, atol 1e-5 by default): the
 * output; the gradients of sum(output * R), R a fixed random tensor, with respect to every float
 * input and every param; and, in training mode, the op's new `state` values, losses and metrics.
 * Inputs and params are drawn once in JavaScript from the case's seed and copied onto each
 * backend. Synchronous: both backends must be initialised (await their `install()` first), else
 * it throws RsError `NO_BACKEND`. Restores the active backend and leaves no tensor behind (a
 * leak on either backend fails the case). A backend that throws (a missing kernel) fails the
 * case with the error in the report.
 *
 * @example
 * const result = checkConformance(c, { backend: 'wasm', reference: 'cpu' });
 * expect(result.ok, result.report).toBe(true);
 */
export function checkConformance(c: ConformanceCase, options: CheckConformanceOptions): ConformanceResult {
  const registry = options.registry ?? defaultRegistry;
  const schema = registry.get(c.op);
  const rtol = options.rtol ?? 1e-4;
  const atol = options.atol ?? 1e-5;
  const tested = options.backend;
  const reference = options.reference ?? 'cpu';
  const data = prepare(schema, c);
  const previous = tf.getBackend();
  let got: Evaluation;
  let want: Evaluation;
  try {
    checkReady(tested);
    checkReady(reference);
    activate(tested);
    got = evaluate(schema, c, data);
    activate(reference);
    want = evaluate(schema, c, data);
  } finally {
    if (previous && tf.getBackend() !== previous && tf.findBackend(previous)) void tf.setBackend(previous);
  }

  const header = `${c.name}: ${tested} vs ${reference} (rtol ${rtol}, atol ${atol})`;
  const failures: string[] = [];
  if (want.error) failures.push(`the reference ${reference} threw: ${want.error}`);
  if (got.error) failures.push(`${tested} threw: ${got.error}`);
  if (want.leaked !== 0) failures.push(`forward and gradients leaked ${want.leaked} tensor(s) on ${reference}`);
  if (got.leaked !== 0) failures.push(`forward and gradients leaked ${got.leaked} tensor(s) on ${tested}`);

  const tensors: ConformanceTensorReport[] = [];
  let maxError = 0;
  let worst = '';
  if (!want.error && !got.error) {
    for (const key of got.tensors.keys()) if (!want.tensors.has(key)) failures.push(`${key} exists on ${tested} only`);
    for (const [key, b] of want.tensors) {
      const a = got.tensors.get(key);
      if (!a) {
        failures.push(`${key} ${formatShape(b.shape)} is missing on ${tested}`);
        continue;
      }
      if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
        failures.push(`${key} has shape ${formatShape(a.shape)} on ${tested}, ${formatShape(b.shape)} on ${reference}`);
        continue;
      }
      let tensorError = 0;
      let tensorAbs = 0;
      for (let i = 0; i < b.values.length; i++) {
        const x = a.values[i];
        const y = b.values[i];
        const diff = x === y || (Number.isNaN(x) && Number.isNaN(y)) ? 0 : Math.abs(x - y);
        const error = Number.isNaN(diff) ? Infinity : diff / (atol + rtol * Math.abs(y));
        if (diff > tensorAbs || Number.isNaN(diff)) tensorAbs = Number.isNaN(diff) ? Infinity : diff;
        if (error > tensorError) tensorError = error;
        if (error > maxError) {
          maxError = error;
          worst =
            `${key} ${formatShape(b.shape)} at [${unravel(i, b.shape).join(', ')}]: ${tested} ${show(x)} vs ${reference} ${show(y)} ` +
            `(|diff| ${show(diff)}, allowed ${show(atol + rtol * Math.abs(y))})`;
        }
      }
      tensors.push({ tensor: key, shape: [...b.shape], maxAbsError: tensorAbs, maxError: tensorError });
    }
  }
  const structural = failures.length > 0;
  if (maxError > 1) failures.push(`worst ${worst}: ${show(maxError)} times the tolerance`);
  const ok = failures.length === 0;
  const perTensor = tensors.map((t) => `${t.tensor} ${show(t.maxError)}`).join(', ');
  const report = ok
    ? `${header}: ok, worst normalised error ${show(maxError)} (${perTensor})`
    : `${header}: FAILED. ${failures.join('; ')}` + (perTensor ? `. Normalised error per tensor (passes at <= 1): ${perTensor}` : '');
  return { ok, maxError: structural ? Infinity : maxError, report, tensors };
}
