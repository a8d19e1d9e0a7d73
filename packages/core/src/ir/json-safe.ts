import { RsError } from '../errors';

/**
 * Refuses attribute values that JSON cannot carry. A graph is stored and copied as JSON, where
 * `NaN` and `Infinity` silently become `null` (so an op would then see its default: a
 * `capacityFactor: NaN` turned into the default capacity), and functions, symbols, bigints and
 * `undefined` inside arrays vanish or throw. Checked before a graph or node is copied.
 */
export function checkJsonSafe(value: unknown, where: string, code: 'INVALID_ATTRS' | 'INVALID_ARGUMENT' = 'INVALID_ATTRS'): void {
  const visit = (v: unknown, path: string, seen: Set<object>): void => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new RsError(code, `${path} is ${String(v)}; graph attributes must be finite numbers (JSON would turn it into null).`, { path, value: String(v) });
      return;
    }
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
    if (typeof v === 'undefined') return; // an absent optional field: dropped by JSON, harmless in objects
    if (typeof v !== 'object') throw new RsError(code, `${path} is a ${typeof v}; graph attributes must be JSON data (numbers, strings, booleans, arrays, objects).`, { path });
    if (seen.has(v)) throw new RsError(code, `${path} refers back to itself; graph attributes must be plain JSON data.`, { path });
    seen.add(v);
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (item === undefined) throw new RsError(code, `${path}[${i}] is undefined; JSON would turn it into null.`, { path: `${path}[${i}]` });
        visit(item, `${path}[${i}]`, seen);
      });
    } else {
      for (const [key, item] of Object.entries(v)) visit(item, `${path}.${key}`, seen);
    }
    seen.delete(v);
  };
  visit(value, where, new Set());
}
