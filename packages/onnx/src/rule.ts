import { RsError } from '@rs/core';
import type { OnnxRule } from '@rs/core/extend';

// The lowering types are @rs/core's (extension point 'onnx'), so a technique package declares
// its op's lowering next to the op without depending on this package.
export type { OnnxCheckInfo, OnnxEmitContext, OnnxOpOptions, OnnxRule } from '@rs/core/extend';

/**
 * Export rules by op kind. A duplicate registration is an error unless `{ override: true }` is
 * passed (the convention of core's `OpRegistry`).
 *
 * @example
 * const rules = createOnnxRules();           // the built-in rules
 * rules.register(myRule);                   // only this table sees it
 * const bytes = toOnnx(model, { rules });
 */
export class OnnxRuleRegistry {
  private readonly rules = new Map<string, OnnxRule>();

  /** Adds `rule` under `rule.op`; throws DUPLICATE_OP when one exists and `override` is not set. */
  register(rule: OnnxRule, options: { override?: boolean } = {}): this {
    if (!rule || typeof rule.op !== 'string' || rule.op.length === 0 || typeof rule.emit !== 'function') {
      throw new RsError('INVALID_ARGUMENT', 'An ONNX rule needs a non-empty string `op` and an `emit` function.');
    }
    if (rule.check !== undefined && typeof rule.check !== 'function') {
      throw new RsError('INVALID_ARGUMENT', `The ONNX rule for '${rule.op}' has a \`check\` that is not a function.`);
    }
    if (this.rules.has(rule.op) && !options.override) {
      throw new RsError('DUPLICATE_OP', `An ONNX rule for op '${rule.op}' is already registered; pass { override: true } to replace it.`, { op: rule.op });
    }
    this.rules.set(rule.op, rule);
    return this;
  }

  has(op: string): boolean {
    return this.rules.has(op);
  }

  /** The rule for `op`, or `undefined`. */
  get(op: string): OnnxRule | undefined {
    return this.rules.get(op);
  }

  /** Op kinds with a rule, sorted. */
  ops(): string[] {
    return [...this.rules.keys()].sort();
  }

  /** A copy that can be extended without touching this table. */
  clone(): OnnxRuleRegistry {
    const copy = new OnnxRuleRegistry();
    for (const rule of this.rules.values()) copy.register(rule);
    return copy;
  }
}
