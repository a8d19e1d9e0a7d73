import type { ValidatedGraph } from './ir/validate';
import type { OpRegistry } from './ops/registry';
import type { TensorInfo } from './ir/types';

/** Parameters and FLOPs (one sample) of one node. */
export interface NodeCount {
  node: string;
  op: string;
  params: number;
  /** Trainable parameters whose mask is non-zero (element sparsity removed). */
  nonzeroParams: number;
  flops: number;
}

/** Totals and per-node counts. `params` excludes `state` (batchNorm statistics). */
export interface ModelCounts {
  params: number;
  nonzeroParams: number;
  flops: number;
  perNode: NodeCount[];
}

export function countModel(
  validated: ValidatedGraph,
  registry: OpRegistry,
  nonzero: (key: string) => number | undefined,
): ModelCounts {
  const perNode: NodeCount[] = [];
  for (const node of validated.order) {
    const schema = registry.get(node.op);
    const inputs = node.inputs.map((i) => validated.infos.get(i) as TensorInfo);
    let params = 0;
    let nonzeroParams = 0;
    for (const [key, spec] of validated.paramSpecs) {
      if (spec.node !== node.id || spec.role === 'state') continue;
      const size = spec.shape.reduce((a, b) => a * b, 1);
      params += size;
      nonzeroParams += nonzero(key) ?? size;
    }
    const flops = schema.flops?.(node.attrs, inputs, validated.infos.get(node.id) as TensorInfo) ?? 0;
    perNode.push({ node: node.id, op: node.op, params, nonzeroParams, flops });
  }
  return {
    params: perNode.reduce((a, n) => a + n.params, 0),
    nonzeroParams: perNode.reduce((a, n) => a + n.nonzeroParams, 0),
    flops: perNode.reduce((a, n) => a + n.flops, 0),
    perNode,
  };
}
