// One change, prepared off the serving path (in the worker process): load a copy of the served
// version, ask the policies in order for a proposal, apply it as one journaled edit, fine-tune on
// the replay buffer with core's `fit`, evaluate the served version and the candidate on the canary
// slice, and return the candidate's bytes with the policy's verdict. Nothing here touches the
// served model: the serving process only ever sees finished bytes.
import { RsError, adam, evaluate, fit, isRsError, loadFromBuffer, saveToBuffer, tf, type JournalEntry, type Model, type OpRegistry, type Tensor } from '@rs/core';
import { resolvePolicy, type CanaryResult, type PolicySpec } from './policy';
import type { TelemetrySnapshot } from './telemetry';

/** Labelled rows, flat: `x` holds `rows` inputs of `inputShape` each. */
export interface LabelledRows {
  x: Float32Array;
  y: Int32Array;
  rows: number;
}

export interface FineTuneOptions {
  /** Optimizer steps on the replay buffer per change (default 60). */
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

export interface PrepareRequest {
  type: 'prepare';
  id: number;
  model: Uint8Array;
  policies: PolicySpec[];
  telemetry: TelemetrySnapshot;
  inputShape: number[];
  replay: LabelledRows;
  canary: LabelledRows;
  fineTune: FineTuneOptions;
}

export interface SerializedError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export type PrepareReply =
  | {
      type: 'candidate';
      id: number;
      policy: string;
      reason: string;
      details: Record<string, unknown>;
      accepted: boolean;
      canary: CanaryResult;
      entry: JournalEntry | null;
      model: Uint8Array;
      /** Training rows processed (steps x batch) and the candidate's forward FLOPs per row. */
      trainRows: number;
      flopsPerRow: number;
      params: number;
    }
  | { type: 'nothing'; id: number }
  | { type: 'refused'; id: number; policy: string; error: SerializedError }
  | { type: 'failed'; id: number; error: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (isRsError(error)) return { code: error.code, message: error.message.replace(/^\[[A-Z_]+\] /, ''), details: JSON.parse(JSON.stringify(error.details ?? {})) as Record<string, unknown> };
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

function tensors(rows: LabelledRows, inputShape: number[]): { x: Tensor; y: Tensor } {
  return { x: tf.tensor(rows.x, [rows.rows, ...inputShape], 'float32'), y: tf.tensor1d(rows.y, 'int32') };
}

function canaryAccuracy(model: Model, canary: { x: Tensor; y: Tensor }): number {
  return evaluate(model, canary, { batchSize: 512 }).accuracy;
}

/**
 * Prepares one change (see the file comment). `progress` is told each stage as it is reached
 * ('loaded', 'edited', 'trained'), so that a supervisor can observe or interrupt it.
 */
export async function prepareChange(request: PrepareRequest, registry: OpRegistry | undefined, progress: (stage: string) => void = () => undefined): Promise<PrepareReply> {
  const { id } = request;
  const width = request.inputShape.reduce((a, b) => a * b, 1);
  for (const [name, rows] of [['replay', request.replay], ['canary', request.canary]] as const) {
    if (rows.x.length !== rows.rows * width || rows.y.length !== rows.rows) {
      throw new RsError('DATA_MISMATCH', `prepareChange: the ${name} rows hold ${rows.x.length} values and ${rows.y.length} labels for ${rows.rows} rows of ${width} inputs.`);
    }
  }
  const model = loadFromBuffer(request.model, registry ? { registry } : {});
  const canary = tensors(request.canary, request.inputShape);
  const replay = tensors(request.replay, request.inputShape);
  try {
    progress('loaded');
    const before = canaryAccuracy(model, canary);
    let chosen: { name: string; reason: string; details: Record<string, unknown>; accept?: (r: CanaryResult) => boolean; entry: JournalEntry | null } | undefined;
    for (const spec of request.policies) {
      const { policy, options } = await resolvePolicy(spec);
      let entry: JournalEntry | null = null;
      let proposal;
      try {
        proposal = policy.propose(model, { telemetry: request.telemetry, options });
        if (proposal === null) continue;
        const edit = proposal.edit;
        if (edit !== undefined) entry = model.edit((tx) => edit(tx, model), { technique: `online:${policy.name}`, reason: proposal.reason, details: proposal.details ?? {} });
      } catch (error) {
        return { type: 'refused', id, policy: policy.name, error: serializeError(error) };
      }
      chosen = { name: policy.name, reason: proposal.reason, details: proposal.details ?? {}, entry, ...(policy.accept ? { accept: policy.accept.bind(policy) } : {}) };
      break;
    }
    if (chosen === undefined) return { type: 'nothing', id };
    progress('edited');
    const { steps, batchSize, learningRate, seed } = request.fineTune;
    let trainRows = 0;
    if (steps > 0 && request.replay.rows > 0) {
      const epochs = Math.ceil((steps * batchSize) / request.replay.rows) + 1;
      const history = await fit(model, replay, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate }), batchSize, epochs, maxSteps: steps, seed, shuffle: true });
      trainRows = history.steps * Math.min(batchSize, request.replay.rows);
    }
    progress('trained');
    const after = canaryAccuracy(model, canary);
    const result: CanaryResult = { before, after, count: request.canary.rows };
    const accepted = chosen.accept ? chosen.accept(result) === true : after >= before - 0.01;
    const counts = model.counts();
    return {
      type: 'candidate',
      id,
      policy: chosen.name,
      reason: chosen.reason,
      details: chosen.details,
      accepted,
      canary: result,
      entry: chosen.entry,
      model: new Uint8Array(saveToBuffer(model)),
      trainRows,
      flopsPerRow: counts.flops,
      params: counts.params,
    };
  } finally {
    tf.dispose([canary.x, canary.y, replay.x, replay.y]);
    model.dispose();
  }
}
