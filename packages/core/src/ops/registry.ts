import { RsError } from '../errors';
import type { OpSchema } from './schema';
import { builtinOps } from './builtins';

/**
 * Op types by name: the plugin surface. A duplicate registration is an error unless
 * `{ override: true }` is passed.
 *
 * @example
 * const registry = createOpRegistry();
 * registry.register(myOp);
 * const model = Model.create(graph, { registry, seed: 1 });
 */
export class OpRegistry {
  private readonly schemas = new Map<string, OpSchema<any>>();

  register<A extends object>(schema: OpSchema<A>, options: { override?: boolean } = {}): this {
    if (!schema || typeof schema.name !== 'string' || schema.name.length === 0) {
      throw new RsError('INVALID_ARGUMENT', 'An op schema needs a non-empty string `name`.');
    }
    if (typeof schema.infer !== 'function' || typeof schema.forward !== 'function') {
      throw new RsError('INVALID_ARGUMENT', `Op '${schema.name}' needs \`infer\` and \`forward\` functions.`);
    }
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

  /** A copy that can be extended without touching this registry. */
  clone(): OpRegistry {
    const copy = new OpRegistry();
    for (const schema of this.schemas.values()) copy.register(schema);
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
