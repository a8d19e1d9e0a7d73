// The page: a drawing pad, a model loader and the classification with its exit.
import { tf, type Model } from '@rs/core';
import { install } from '@rs/backend-wasm';
import { fetchModel, ModelNotFoundError } from './fetch-model';
import { classify, loadModel, softmax, summarize, type Classification, type ModelSummary } from './model';
import { inkFromRgba, toMnist } from './preprocess';

type State = 'starting' | 'loading' | 'ready' | 'no-model' | 'error';

declare global {
  interface Window {
    /** Test hook: classifies `count` MNIST digits (784 floats each) with the loaded model. */
    rsPredict: (pixels: ArrayLike<number>, count: number) => Promise<Classification>;
    /** Test hook: the backend, its threads, live tensors and the loaded model's summary. */
    rsInfo: () => { backend: string; threads: number; numTensors: number; summary: ModelSummary | undefined };
    /** Test hook: the 784 pixels the last drawing was classified from, or null. */
    rsLastDigit: () => number[] | null;
  }
}

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
};
const pad = element<HTMLCanvasElement>('pad');
const preview = element<HTMLCanvasElement>('preview');
const status = element<HTMLParagraphElement>('status');
const classifyButton = element<HTMLButtonElement>('classify');
const digitOutput = element<HTMLOutputElement>('digit');
const exitLine = element<HTMLParagraphElement>('exit');
const probabilities = element<HTMLTableElement>('probabilities');
const urlInput = element<HTMLInputElement>('url');

const padContext = pad.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D;
const previewContext = preview.getContext('2d') as CanvasRenderingContext2D;

let model: Model | undefined;
let summary: ModelSummary | undefined;
let threads = 1;
let drawn = false;
let lastDigit: Float32Array | undefined;

function setState(state: State, message: string): void {
  document.body.dataset.state = state;
  status.textContent = message;
  status.classList.toggle('error', state === 'error' || state === 'no-model');
}

const report = (error: unknown): void => setState('error', error instanceof Error ? error.message : String(error));

const format = (n: number): string => n.toLocaleString('en-US');

function showSummary(name: string, s: ModelSummary): void {
  const rows: [string, string][] = [
    ['file', `${name} (${format(Math.round(s.bytes / 1024))} KiB)`],
    ['parameters', format(s.params)],
    ['non-zero parameters', `${format(s.nonzeroParams)} (${((100 * s.nonzeroParams) / s.params).toFixed(1)}%)`],
    ['journal entries', format(s.journal.length)],
    ['exits', s.exits.map((e, i) => `${i}: ${e.id} (${format(e.flops)} FLOPs)`).join(', ')],
    ['exit policy', s.policy ? `${s.policy.rule} <= ${s.policy.thresholds.map((t) => t.toPrecision(3)).join(', ')}` : 'none'],
    ['backend', `${tf.getBackend()} (${threads} thread${threads === 1 ? '' : 's'})`],
  ];
  const list = element<HTMLDListElement>('summary');
  list.replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.field = term;
      return [dt, dd];
    }),
  );
  element<HTMLOListElement>('journal').replaceChildren(
    ...s.journal.map((entry) => {
      const li = document.createElement('li');
      li.textContent = `[${entry.technique}] ${entry.reason}: ${format(entry.params)} parameters, ${format(entry.nonzeroParams)} non-zero`;
      return li;
    }),
  );
}

function useModel(bytes: ArrayBuffer, name: string): void {
  const next = loadModel(bytes);
  model?.dispose();
  model = next;
  summary = summarize(model, bytes.byteLength);
  showSummary(name, summary);
  classifyButton.disabled = false;
  setState('ready', `Loaded ${name}.`);
  if (drawn) classifyDrawing().catch(report);
}

async function loadFromUrl(url: string): Promise<void> {
  setState('loading', `Loading ${url}…`);
  let bytes: ArrayBuffer;
  try {
    // Checked before decoding: no model there (404, or the server's HTML fallback page) gets
    // a message saying how to make one, not a decoding error.
    bytes = await fetchModel(url);
  } catch (error) {
    if (error instanceof ModelNotFoundError) setState('no-model', error.message);
    else setState('error', `Could not fetch ${url}: ${String(error)}`);
    return;
  }
  useModel(bytes, url);
}

// Drawing: light strokes on black, like MNIST. Pointer events cover mouse, pen and touch.
function clearPad(): void {
  padContext.fillStyle = '#000';
  padContext.fillRect(0, 0, pad.width, pad.height);
  previewContext.clearRect(0, 0, preview.width, preview.height);
  drawn = false;
  lastDigit = undefined;
  digitOutput.textContent = '–';
  exitLine.textContent = 'Draw a digit, then Classify.';
  probabilities.tBodies[0].replaceChildren();
}

let last: { x: number; y: number } | undefined;
const position = (event: PointerEvent): { x: number; y: number } => {
  const box = pad.getBoundingClientRect();
  return { x: ((event.clientX - box.left) * pad.width) / box.width, y: ((event.clientY - box.top) * pad.height) / box.height };
};
function stroke(from: { x: number; y: number }, to: { x: number; y: number }): void {
  padContext.strokeStyle = '#fff';
  padContext.lineWidth = 20;
  padContext.lineCap = 'round';
  padContext.lineJoin = 'round';
  padContext.beginPath();
  padContext.moveTo(from.x, from.y);
  padContext.lineTo(to.x, to.y);
  padContext.stroke();
  drawn = true;
}
pad.addEventListener('pointerdown', (event) => {
  pad.setPointerCapture(event.pointerId);
  last = position(event);
  stroke(last, last);
});
pad.addEventListener('pointermove', (event) => {
  if (!last) return;
  const next = position(event);
  stroke(last, next);
  last = next;
});
const endStroke = (): void => {
  last = undefined;
};
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);

async function classifyDrawing(): Promise<void> {
  if (!model || !summary) {
    exitLine.textContent = 'Load a model first.';
    return;
  }
  const digit = toMnist(inkFromRgba(padContext.getImageData(0, 0, pad.width, pad.height).data), pad.width, pad.height);
  if (!digit) {
    exitLine.textContent = 'Nothing drawn yet.';
    return;
  }
  const image = previewContext.createImageData(28, 28);
  digit.forEach((v, i) => {
    image.data.set([255 * v, 255 * v, 255 * v, 255], 4 * i);
  });
  previewContext.putImageData(image, 0, 0);
  lastDigit = digit;
  const result = await classify(model, digit, 1);
  const probs = softmax(result.logits);
  const predicted = result.predictions[0];
  const exit = result.exitIndex[0];
  const exits = summary.exits;
  digitOutput.textContent = String(predicted);
  digitOutput.dataset.exit = String(exit);
  exitLine.textContent =
    exit < exits.length - 1
      ? `Left early at exit ${exit} (${exits[exit].id}): ${format(exits[exit].flops)} of ${format(exits[exits.length - 1].flops)} FLOPs.`
      : `Ran the full network: exit ${exit} (${exits[exit].id}), ${format(exits[exit].flops)} FLOPs.`;
  probabilities.tBodies[0].replaceChildren(
    ...probs.map((p, digitClass) => {
      const row = document.createElement('tr');
      if (digitClass === predicted) row.className = 'top';
      const label = document.createElement('td');
      label.textContent = String(digitClass);
      const bar = document.createElement('td');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      bar.append(fill);
      const value = document.createElement('td');
      value.textContent = `${(100 * p).toFixed(1)}%`;
      row.append(label, bar, value);
      return row;
    }),
  );
}

classifyButton.addEventListener('click', () => void classifyDrawing().catch(report));
element<HTMLButtonElement>('clear').addEventListener('click', clearPad);
element<HTMLButtonElement>('load').addEventListener('click', () => void loadFromUrl(urlInput.value).catch(report));
element<HTMLInputElement>('file').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (!file) return;
  setState('loading', `Reading ${file.name}…`);
  file
    .arrayBuffer()
    .then((bytes) => useModel(bytes, file.name))
    .catch(report);
});

window.rsPredict = async (pixels, count) => {
  if (!model) throw new Error('No model is loaded.');
  return classify(model, pixels, count);
};
window.rsLastDigit = () => (lastDigit ? Array.from(lastDigit) : null);
window.rsInfo = () => ({ backend: tf.getBackend(), threads, numTensors: tf.memory().numTensors, summary });

clearPad();
try {
  // The .wasm binaries are copied to wasm/ next to the page by vite.config.ts.
  const info = await install({ wasmPaths: new URL('wasm/', document.baseURI).href });
  threads = Number(info.capabilities?.threads ?? 1);
  // ?model=URL picks another model; the default is model.rsm next to the page.
  const requested = new URLSearchParams(location.search).get('model');
  if (requested) urlInput.value = requested;
  await loadFromUrl(urlInput.value);
} catch (error) {
  report(error);
}
