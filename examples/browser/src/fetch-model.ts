// Fetching the model file, checked before decoding: a dev server or static host that has no
// model.rsm answers 404, or 200 with its HTML fallback page, and decoding that HTML as a model
// gives a baffling IO_CORRUPT ("header length 8104636974849335612", the bytes `<!doctype`).

/** Where the page's default model comes from (vite.config.ts serves and emits it). */
export const MODEL_HINT = 'run `npm run main` first, which writes examples/out/lenet-pruned-exit.rsm (or `node examples/browser/scripts/make-model.mjs`), or pick a .rsm file';

/** The server has no model at the URL (it answered an error status or an HTML page). */
export class ModelNotFoundError extends Error {
  readonly url: string;
  readonly status: number;
  readonly contentType: string;

  constructor(url: string, status: number, contentType: string) {
    super(`The model file was not found at ${url} (the server answered ${status} / ${contentType || 'no content type'}): ${MODEL_HINT}.`);
    this.name = 'ModelNotFoundError';
    this.url = url;
    this.status = status;
    this.contentType = contentType;
  }
}

/** The part of `fetch` this module uses (a fake in tests). */
export type FetchLike = (url: string) => Promise<Pick<Response, 'ok' | 'status' | 'headers' | 'arrayBuffer'>>;

/**
 * True when `bytes` are an HTML or XML page (`<!doctype`, `<html`, `<?xml` after an optional BOM
 * and blanks), never a saved model: a model starts with its header length, 8 little-endian bytes
 * whose last ones are 0, while a page has no NUL byte there.
 */
export function looksLikeMarkup(bytes: Uint8Array): boolean {
  if (bytes.length < 2 || bytes.subarray(0, 8).includes(0)) return false;
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && i < 64 && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] !== 0x3c) return false; // '<'
  const next = bytes[i + 1];
  return next === 0x21 || next === 0x3f || next === 0x2f || (next >= 0x41 && next <= 0x5a) || (next >= 0x61 && next <= 0x7a); // ! ? / letter
}

/**
 * Fetches a saved model's bytes, or throws ModelNotFoundError when the server has none there
 * (an error status, an HTML content type, or a body that starts with `<`). Network errors are
 * thrown as they come.
 *
 * @example
 * const bytes = await fetchModel('./model.rsm');
 * const model = loadFromBuffer(bytes);
 */
export async function fetchModel(url: string, fetchImpl: FetchLike = (u) => fetch(u)): Promise<ArrayBuffer> {
  const response = await fetchImpl(url);
  const contentType = response.headers.get('content-type') ?? '';
  if (!response.ok || /^text\/html\b/i.test(contentType)) throw new ModelNotFoundError(url, response.status, contentType);
  const bytes = await response.arrayBuffer();
  if (looksLikeMarkup(new Uint8Array(bytes))) throw new ModelNotFoundError(url, response.status, contentType || 'a page starting with <');
  return bytes;
}
