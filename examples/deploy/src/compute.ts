// What every runtime computes in the cross-runtime check (test/deploy.test.ts): the pruned
// early-exit MNIST model's logits and exits on a batch of digits, and the MoE character model's
// next-character distributions on a batch of text windows. The same code runs in Node (the
// reference), in Chromium (page and Web Worker, bundled with @rs/backend-wasm/runtime), and in
// Bun and Deno (the published packages with @rs/backend-wasm); the caller installs the backend.
import { tf, loadFromBuffer, createOpRegistry } from '@rs/core';
import { earlyExitPredict } from '@rs/dynamic';
import { register as registerMoe } from '@rs/moe';

/** The inputs, as plain data (they travel as JSON to other processes and to a worker). */
export interface ComputeInputs {
  /** The saved pruned early-exit model (.rsm), base64. */
  exitModel: string;
  /** The saved MoE character model (.rsm), base64. */
  moeModel: string;
  /** `digits * 784` pixels in [0, 1]. */
  pixels: number[];
  digits: number;
  /** `windows * context` character ids. */
  chars: number[];
  windows: number;
  context: number;
}

export interface ComputeOutputs {
  backend: string;
  /** `digits * 10` logits of the exit each digit left at. */
  logits: number[];
  exitIndex: number[];
  /** `windows * vocab` next-character probabilities after each window. */
  next: number[];
  vocab: number;
  /** Live tensors after the run minus before it. */
  leaked: number;
}

/** Decodes base64 with the platform's `atob` (browsers, workers, Node 16+, Bun, Deno). */
export function fromBase64(text: string): ArrayBuffer {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

/** Loads both models from their bytes and runs them on the inputs, on the active backend. */
export async function compute(inputs: ComputeInputs): Promise<ComputeOutputs> {
  const exitModel = loadFromBuffer(fromBase64(inputs.exitModel));
  const moeModel = loadFromBuffer(fromBase64(inputs.moeModel), { registry: registerMoe(createOpRegistry()) });
  try {
    const x = tf.tensor2d(Float32Array.from(inputs.pixels), [inputs.digits, 784]);
    const run = earlyExitPredict(exitModel, x);
    const logits = Array.from(await run.logits.data());
    tf.dispose([x, run.logits]);
    const windows = tf.tensor2d(Int32Array.from(inputs.chars), [inputs.windows, inputs.context], 'int32');
    const probs = tf.tidy(() => {
      const out = moeModel.apply(windows); // [windows, context, vocab]
      const last = tf.slice(out, [0, inputs.context - 1, 0], [inputs.windows, 1, out.shape[2] as number]);
      return tf.softmax(tf.reshape(last, [inputs.windows, out.shape[2] as number]));
    });
    const next = Array.from(await probs.data());
    const vocab = probs.shape[1] as number;
    tf.dispose([windows, probs]);
    return { backend: tf.getBackend(), logits, exitIndex: Array.from(run.exitIndex), next, vocab, leaked: 0 };
  } finally {
    exitModel.dispose();
    moeModel.dispose();
  }
}

/** `compute`, with `leaked` measured once both models are disposed. */
export async function computeChecked(inputs: ComputeInputs): Promise<ComputeOutputs> {
  const before = tf.memory().numTensors;
  const outputs = await compute(inputs);
  return { ...outputs, leaked: tf.memory().numTensors - before };
}
