// Shared fakes and helpers of the op tests (ops-*.test.ts): an InferContext and ForwardContext,
// deterministic params, a recording UnitBuilder, and tolerance/leak checks around forward.
import { expect } from 'vitest';
import { tf } from '../tf';
import type { Tensor } from '../tf';
import { RsError, isRsError } from '../errors';
import type { RsErrorCode } from '../errors';
import type { ParamSpec, Shape, TensorInfo } from '../ir/types';
import type { Layout, ParamAxis, UnitBuilder } from '../units/builder';
import type { ForwardContext, InferContext, OpSchema } from './schema';

// ---------------------------------------------------------------- fakes

export const ctx: InferContext = {
  nodeId: 'n',
  fail(message: string): never {
    throw new RsError('SHAPE_MISMATCH', message);
  },
  failAttrs(message: string): never {
    throw new RsError('INVALID_ATTRS', message);
  },
};

export function info(shape: Shape, dtype: TensorInfo['dtype'] = 'float32'): TensorInfo {
  return { shape, dtype };
}

export function expectCode(run: () => unknown, code: RsErrorCode, pattern?: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(isRsError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  if (pattern) expect((caught as Error).message).toMatch(pattern);
}

export function forwardContext(training: boolean, seed = 7): ForwardContext & { state: Record<string, Tensor> } {
  const state: Record<string, Tensor> = {};
  let s = seed;
  return {
    nodeId: 'n',
    training,
    rng: { next: () => ((s = (s * 16807) % 2147483647) / 2147483647), seed: () => (s = (s * 16807) % 2147483647) },
    addLoss: () => {},
    addMetric: () => {},
    setState: (param, value) => {
      state[param] = value;
    },
    state,
  };
}

/** Deterministic param tensors: ones/zeros as declared, seeded normals for everything else. */
export function makeParams(specs: Record<string, ParamSpec>, seed = 1): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  let i = 0;
  for (const [name, spec] of Object.entries(specs)) {
    i++;
    if (spec.init.kind === 'ones') out[name] = tf.ones(spec.shape);
    else if (spec.init.kind === 'zeros') out[name] = tf.zeros(spec.shape);
    else out[name] = tf.randomNormal(spec.shape, 0, 0.5, 'float32', seed * 100 + i);
  }
  return out;
}

/** Every spec's init replaced by random values (to make biases and norms non-trivial). */
export function randomParams(specs: Record<string, ParamSpec>, seed = 1): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  Object.entries(specs).forEach(([name, spec], i) => {
    out[name] = tf.randomNormal(spec.shape, 0, 0.5, 'float32', seed * 100 + i);
  });
  return out;
}

export function paramShapes<A extends object>(op: OpSchema<A>, attrs: A, inputs: TensorInfo[]): Record<string, number[]> {
  const specs = op.params?.(attrs, inputs) ?? {};
  return Object.fromEntries(Object.entries(specs).map(([k, v]) => [k, v.shape]));
}

/** A UnitBuilder that records every call; layouts are tagged by a `group` number. */
export function recordUnits<A extends object>(op: OpSchema<A>, attrs: A, inputs: TensorInfo[]) {
  const output = op.infer(attrs, inputs, ctx);
  const calls: { kind: string; args: unknown[] }[] = [];
  const layout = (length: number, group: number): Layout => ({ length, members: [{ group, size: length, offset: 0, outer: [], inner: 1 }] });
  let nextGroup = 100;
  const u: UnitBuilder<A> = {
    nodeId: 'n',
    attrs,
    inputs,
    output,
    input: (i) => (inputs[i].dtype === 'int32' ? null : layout(inputs[i].shape[inputs[i].shape.length - 1] as number, i)),
    source: (name: string, size: number, params: ParamAxis[]) => {
      calls.push({ kind: 'source', args: [name, size, params] });
      return layout(size, nextGroup++);
    },
    consume: (l, param, axis) => void calls.push({ kind: 'consume', args: [l?.members[0].group ?? null, param, axis] }),
    merge: (...ls) => {
      calls.push({ kind: 'merge', args: ls.map((l) => l?.members[0].group ?? null) });
      return ls[0];
    },
    concat: (ls, lengths) => {
      calls.push({ kind: 'concat', args: [ls.map((l) => l?.members[0].group ?? null), lengths] });
      return layout(lengths.reduce((a, b) => a + b, 0), nextGroup++);
    },
    expand: (l, count) => {
      calls.push({ kind: 'expand', args: [l?.members[0].group ?? null, count] });
      return l;
    },
    fixed: (length, reason) => {
      calls.push({ kind: 'fixed', args: [length, reason] });
      return layout(length, -1);
    },
    freeze: (l, reason) => void calls.push({ kind: 'freeze', args: [l?.members[0].group ?? null, reason] }),
    normalizes: (l, reason) => {
      calls.push({ kind: 'normalizes', args: [l?.members[0].group ?? null, reason] });
      return l;
    },
  };
  const units = op.units;
  const result = typeof units === 'function' ? units(u) : units;
  return { calls, result };
}

export function close(actual: Tensor | number[], expected: number[], tolerance = 1e-5): void {
  const values = Array.isArray(actual) ? actual : Array.from(actual.dataSync());
  expect(values.length).toBe(expected.length);
  values.forEach((v, i) => expect(Math.abs(v - expected[i]), `index ${i}: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance));
}

/** Runs forward inside tidy; checks that only the output survives. */
export function runForward<A extends object>(
  op: OpSchema<A>,
  inputs: Tensor[],
  params: Record<string, Tensor>,
  attrs: A,
  fctx: ForwardContext = forwardContext(false),
): Tensor {
  const before = tf.memory().numTensors;
  const y = tf.tidy(() => op.forward(inputs, params, attrs, fctx));
  const kept = Object.keys((fctx as { state?: object }).state ?? {}).length;
  expect(tf.memory().numTensors).toBe(before + 1 + kept);
  return y;
}

export function iota(shape: number[], scale = 0.1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Array.from({ length: n }, (_, i) => Math.sin(i + 1) * scale * 10), shape);
}
