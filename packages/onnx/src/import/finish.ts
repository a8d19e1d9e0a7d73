import { Model, RsError, tf, createOpRegistry, type OpRegistry, type Tensor } from '@rs/core';
import type { GraphBuilder, ImportProblem } from './builder';
import { registerImportOps } from './ops';

/** One UNSUPPORTED_IMPORT error listing every problem (nothing has been created yet). */
export function throwProblems(what: string, problems: ImportProblem[]): void {
  if (problems.length === 0) return;
  const list = problems.map((p) => `node '${p.node}' (${p.domain ? `${p.domain}.` : ''}${p.opType}${p.opset >= 0 ? `, opset ${p.opset}` : ''}): ${p.reason}`).join('; ');
  throw new RsError('UNSUPPORTED_IMPORT', `This ${what} cannot be imported; ${problems.length} node(s) are not supported: ${list}.`, {
    node: problems[0].node,
    opType: problems[0].opType,
    problems,
  });
}

/** Creates the model from the built graph: the import ops registered, parameter tensors released after. */
export function createImported(builder: GraphBuilder, outputs: string[], options: { registry?: OpRegistry; seed?: number }): Model {
  const registry = options.registry ?? createOpRegistry();
  registerImportOps(registry);
  const params: Record<string, Tensor> = {};
  try {
    for (const [key, value] of builder.params) params[key] = tf.tensor(value.data, value.shape, 'float32');
    return Model.create({ inputs: builder.inputs, nodes: builder.nodes, outputs }, { registry, params, seed: options.seed ?? 0 });
  } finally {
    tf.dispose(Object.values(params));
  }
}
