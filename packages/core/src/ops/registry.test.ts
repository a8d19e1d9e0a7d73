import { describe, it, expect } from 'vitest';
import { createOpRegistry, isRsError, type OpSchema } from '../index';
import type { OnnxRule, ReportSection } from '../extend';

const op: OpSchema<Record<string, never>> = {
  name: 'test.identity',
  arity: 1,
  infer: (_attrs, [x]) => ({ shape: [...x.shape], dtype: x.dtype }),
  forward: ([x]) => x,
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isRsError(e) ? e.code : String(e);
  }
  return undefined;
}

describe('op registry: one registration rule, extension points', () => {
  it('registering the same schema twice does nothing; a different schema under a taken name is DUPLICATE_OP unless overriding', () => {
    const registry = createOpRegistry({ builtins: false });
    registry.register(op).register(op);
    expect(registry.names()).toEqual(['test.identity']);
    expect(code(() => registry.register({ ...op }))).toBe('DUPLICATE_OP');
    const other = { ...op };
    registry.register(other, { override: true });
    expect(registry.get('test.identity')).toBe(other);
  });

  it('provide / provided / extension: typed points, same value again is a no-op, another value is DUPLICATE_EXTENSION; clone copies them', () => {
    const registry = createOpRegistry({ builtins: false }).register(op);
    const lowering: OnnxRule = { op: op.name, emit: (ctx) => ctx.inputNames[0] };
    const section: ReportSection = { section: 'identity', collect: () => ({ ok: true }) };
    registry.provide('onnx', op.name, lowering).provide('onnx', op.name, lowering).provide('report', 'identity', section);
    expect(registry.extension('onnx', op.name)).toBe(lowering);
    expect(registry.extension('onnx', 'missing')).toBeUndefined();
    expect([...registry.provided('report').keys()]).toEqual(['identity']);
    expect(registry.provided('nothing-here').size).toBe(0);
    expect(code(() => registry.provide('onnx', op.name, { ...lowering }))).toBe('DUPLICATE_EXTENSION');
    expect(code(() => registry.provide('onnx', '', lowering))).toBe('INVALID_ARGUMENT');
    const replacement: OnnxRule = { op: op.name, emit: () => 'y' };
    const copy = registry.clone();
    copy.provide('onnx', op.name, replacement, { override: true });
    expect(copy.extension('onnx', op.name)).toBe(replacement);
    expect(registry.extension('onnx', op.name)).toBe(lowering);
    expect(copy.extension('report', 'identity')).toBe(section);
  });
});
