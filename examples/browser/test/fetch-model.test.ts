// The page's model loading, without a browser: a missing model (404, or a dev server's HTML
// fallback with status 200) gets a message saying how to make one instead of IO_CORRUPT with a
// nonsense header length; a real saved model goes through.
import { describe, it, expect } from 'vitest';
import { saveToBuffer, lenet300100, Model, loadFromBuffer } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { fetchModel, looksLikeMarkup, ModelNotFoundError, type FetchLike } from '../src/fetch-model';

const HTML = '<!doctype html>\n<html lang="en"><head><title>Vite</title></head><body></body></html>\n';

/** A fetch that answers every URL with `body`, `status` and `contentType`, as a Response does. */
function fakeFetch(body: ArrayBuffer | string, status = 200, contentType?: string): FetchLike {
  return async () => new Response(body, { status, headers: contentType === undefined ? {} : { 'content-type': contentType } });
}

describe('fetchModel', () => {
  it('404: ModelNotFoundError naming the URL, the answer and `npm run main`', async () => {
    const error = await fetchModel('./model.rsm', fakeFetch('Not Found', 404, 'text/plain')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelNotFoundError);
    expect((error as Error).message).toBe(
      'The model file was not found at ./model.rsm (the server answered 404 / text/plain): run `npm run main` first, which writes examples/out/lenet-pruned-exit.rsm (or `node examples/browser/scripts/make-model.mjs`), or pick a .rsm file.',
    );
  });

  it("a dev server's HTML fallback (200, text/html): ModelNotFoundError, not IO_CORRUPT", async () => {
    const error = await fetchModel('./model.rsm', fakeFetch(HTML, 200, 'text/html; charset=utf-8')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelNotFoundError);
    expect((error as Error).message).toContain('(the server answered 200 / text/html; charset=utf-8)');
    expect((error as Error).message).toContain('npm run main');
    // What the page showed before: the HTML decoded as a model.
    expect(() => loadFromBuffer(new TextEncoder().encode(HTML))).toThrow(/IO_CORRUPT|IO_TRUNCATED/);
  });

  it('an HTML page served with a binary content type is recognised by its first bytes', async () => {
    for (const body of [HTML, `\ufeff  ${HTML}`, '<?xml version="1.0"?><Error>NoSuchKey</Error>']) {
      const error = await fetchModel('https://cdn.example/m.rsm', fakeFetch(body, 200, 'application/octet-stream')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelNotFoundError);
      expect((error as Error).message).toContain('not found at https://cdn.example/m.rsm (the server answered 200 / application/octet-stream)');
    }
  });

  it('a saved model comes back byte for byte (with or without a content type)', async () => {
    await install();
    const model = Model.create(lenet300100(), { seed: 1 });
    const saved = saveToBuffer(model);
    model.dispose();
    for (const type of ['application/octet-stream', undefined]) {
      const bytes = await fetchModel('./model.rsm', fakeFetch(saved, 200, type));
      expect(bytes.byteLength).toBe(saved.byteLength);
      expect(Buffer.from(bytes).equals(Buffer.from(saved))).toBe(true);
    }
    const loaded = loadFromBuffer(await fetchModel('./model.rsm', fakeFetch(saved)));
    expect(loaded.graph.inputs[0].shape).toEqual([null, 784]);
    loaded.dispose();
  });

  it('network errors are thrown as they come', async () => {
    const failing: FetchLike = async () => {
      throw new TypeError('Failed to fetch');
    };
    await expect(fetchModel('./model.rsm', failing)).rejects.toThrow('Failed to fetch');
  });
});

describe('looksLikeMarkup', () => {
  it('never mistakes a model header for a page: the 8-byte header length has zero bytes', () => {
    // Header lengths whose first bytes are '<' followed by a letter: still models.
    for (const length of [0x683c, 0x3c, 0x213c, 0x2f3c]) {
      const bytes = new Uint8Array(16);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(length), true);
      expect(looksLikeMarkup(bytes), String(length)).toBe(false);
    }
    expect(looksLikeMarkup(new TextEncoder().encode(HTML))).toBe(true);
    expect(looksLikeMarkup(new Uint8Array(0))).toBe(false);
  });
});

describe('vite build without a model', () => {
  it('warns, naming the files it looked for and `npm run main`', async () => {
    const { missingModelWarning } = await import('../vite.config');
    const warning = missingModelWarning(undefined);
    expect(warning).toContain('examples/out/lenet-pruned-exit.rsm');
    expect(warning).toContain('npm run main');
    expect(missingModelWarning('/some/model.rsm')).toBeUndefined();
  });
});
