/** What a `moe` node reported for one step, read from `trainStep`/`computeGradients` metrics. */
export interface MoeStepMetrics {
  /** Fraction of tokens whose first choice is each expert (before the capacity limit). */
  loads: number[];
  /** Busiest expert's load over the mean load (1 = balanced). */
  imbalance: number;
  /** Fraction of requested assignments dropped by the capacity limit. */
  dropped: number;
  /** Mean router entropy (nats). */
  entropy: number;
  /** N * sum f_i P_i (1 = uniform) and the z-loss before their coefficients. */
  balance: number;
  z: number;
}

/**
 * Collects the metrics that `moe` node `nodeId` reported (keys `nodeId/load.0`, ...).
 *
 * @example
 * const { metrics } = trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
 * moeMetrics(metrics, 'block0.moe').imbalance;
 */
export function moeMetrics(metrics: Record<string, number>, nodeId: string): MoeStepMetrics {
  const loads: number[] = [];
  for (let e = 0; `${nodeId}/load.${e}` in metrics; e++) loads.push(metrics[`${nodeId}/load.${e}`]);
  return {
    loads,
    imbalance: metrics[`${nodeId}/imbalance`],
    dropped: metrics[`${nodeId}/dropped`],
    entropy: metrics[`${nodeId}/entropy`],
    balance: metrics[`${nodeId}/balance_unscaled`],
    z: metrics[`${nodeId}/z_unscaled`],
  };
}
