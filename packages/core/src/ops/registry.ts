import { RsError } from '../errors';
import type { OpSchema } from './schema';
import { builtinOps } from './builtins';
import type { ExtensionPoints } from './extensions';

/** The value type of extension point `P` (`unknown` for a point core does not type). */
export type ExtensionValue<P extends string> = P extends keyof ExtensionPoints ? ExtensionPoints[P] : unknown;

/**
 * Op types by name, and what packages provide to the layers above core (extension points such
 * as `'onnx'`, `'report'`, `'telemetry'`, `'score'`): the plugin surface. Registering an op whose name is
 * taken by a different schema is an error unless `{ override: true }` is passed; registering the
 * same schema object again does nothing (so two packages may both call a `register`). The same
 * rule holds for `provide`.
 *
 * @example
 * const registry = createOpRegistry();
 * registry.register(myOp);
 * const model = Model.create(graph, { registry, seed: 1 });
 */
export class OpRegistry {
  private readonly schemas = new Map<string, OpSchema<any>>();
  private readonly points = new Map<string, Map<string, unknown>>();

  register<A extends object>(schema: OpSchema<A>, options: { override?: boolean } = {}): this {
    if (!schema || typeof schema.name !== 'string' || schema.name.length === 0) {
      throw new RsError('INVALID_ARGUMENT', 'An op schema needs a non-empty string `name`.');
    }
    if (typeof schema.infer !== 'function' || typeof schema.forward !== 'function') {
      throw new RsError('INVALID_ARGUMENT', `Op '${schema.name}' needs \`infer\` and \`forward\` functions.`);
    }
    if (this.schemas.get(schema.name) === schema) return this;
    if (this.schemas.has(schema.name) && !options.override) {
      throw new RsError('DUPLICATE_OP', `Op '${schema.name}' is already registered; pass { override: true } to replace it.`, {
        op: schema.name,
      });
    }
    this.schemas.set(schema.name, schema as OpSchema<any>);
    return this;
  }

  has(name: string): boolean {
    return this.schemas.has(name);
  }

  get(name: string): OpSchema<any> {
    const schema = this.schemas.get(name);
    if (!schema) {
      throw new RsError('UNKNOWN_OP', `Unknown op '${name}'. Registered ops: ${this.names().join(', ')}.`, { op: name });
    }
    return schema;
  }

  names(): string[] {
    return [...this.schemas.keys()].sort();
  }

  /**
   * Provides `value` at extension point `point` under `key` (an op name for `'onnx'` and
   * `'telemetry'`, a section name for `'report'`, a score name for `'score'`). A different value under a taken key is an
   * error (`DUPLICATE_EXTENSION`) unless `{ override: true }` is passed; the same value again does nothing.
   *
   * @example
   * registry.register(moe).provide('onnx', 'moe', moeOnnx);
   */
  provide<P extends string>(point: P, key: string, value: ExtensionValue<P>, options: { override?: boolean } = {}): this {
    if (typeof point !== 'string' || point.length === 0 || typeof key !== 'string' || key.length === 0) {
      throw new RsError('INVALID_ARGUMENT', 'provide(point, key, value) needs a non-empty string point and key.');
    }
    if (value === undefined || value === null) throw new RsError('INVALID_ARGUMENT', `provide('${point}', '${key}'): the value is ${String(value)}.`);
    const entries = this.points.get(point) ?? new Map<string, unknown>();
    const existing = entries.get(key);
    if (existing === value) return this;
    if (existing !== undefined && !options.override) {
      throw new RsError('DUPLICATE_EXTENSION', `Extension point '${point}' already has '${key}'; pass { override: true } to replace it.`, { point, key });
    }
    entries.set(key, value);
    this.points.set(point, entries);
    return this;
  }

  /** What was provided at `point`, by key (in the order provided). */
  provided<P extends string>(point: P): ReadonlyMap<string, ExtensionValue<P>> {
    return new Map(this.points.get(point) ?? []) as Map<string, ExtensionValue<P>>;
  }

  /** The value provided at `point` under `key`, or `undefined`. */
  extension<P extends string>(point: P, key: string): ExtensionValue<P> | undefined {
    return this.points.get(point)?.get(key) as ExtensionValue<P> | undefined;
  }

  /** A copy (ops and extensions) that can be extended without touching this registry. */
  clone(): OpRegistry {
    const copy = new OpRegistry();
    for (const schema of this.schemas.values()) copy.register(schema);
    for (const [point, entries] of this.points) for (const [key, value] of entries) copy.provide(point, key, value as never);
    return copy;
  }
}

/**
 * A registry holding the built-in ops (default) or nothing (`{ builtins: false }`).
 *
 * @example
 * const registry = createOpRegistry().register(myOp);
 */
export function createOpRegistry(options: { builtins?: boolean } = {}): OpRegistry {
  const registry = new OpRegistry();
  if (options.builtins !== false) for (const op of builtinOps) registry.register(op);
  return registry;
}

/** The registry models use unless given another. Plugins may register into it. */
export const defaultRegistry: OpRegistry = createOpRegistry();
