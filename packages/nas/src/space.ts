import { RsError, type GraphDef, type SeededRng } from '@rs/core';

/** One decision of a search space: a name and the options to pick from. */
export interface ChoicePoint {
  name: string;
  options: readonly string[];
}

/** An architecture: for each choice point (in order), the index of the chosen option. */
export type Architecture = readonly number[];

/**
 * A search space over the IR: choice points, a text encoding of an architecture, and (for
 * trainable spaces) a builder that turns an architecture into a graph.
 */
export interface SearchSpace {
  readonly name: string;
  readonly choices: readonly ChoicePoint[];
  /** Number of architectures (product of the option counts). */
  readonly size: number;
  /** Text form of an architecture (stable; used as a key). */
  encode(arch: Architecture): string;
  /** Parses `encode`'s text form; malformed text raises INVALID_ARCHITECTURE. */
  decode(text: string): number[];
  /** The graph of an architecture, where the space can build one. */
  build?(arch: Architecture): GraphDef;
}

/** Options of {@link defineSpace}. */
export interface DefineSpaceOptions {
  name: string;
  choices: readonly ChoicePoint[];
  /** Custom text form; default `name=option,name=option`. */
  encode?: (arch: Architecture, choices: readonly ChoicePoint[]) => string;
  decode?: (text: string, choices: readonly ChoicePoint[]) => number[];
  build?: (arch: Architecture) => GraphDef;
}

/**
 * Defines a search space. An empty space (no choice points, or a point with no options) raises
 * EMPTY_SPACE.
 *
 * @example
 * const space = defineSpace({ name: 'mlp', choices: [{ name: 'width', options: ['32', '64'] }] });
 * space.encode([1]); // 'width=64'
 */
export function defineSpace(options: DefineSpaceOptions): SearchSpace {
  const { name, choices } = options;
  if (choices.length === 0) throw new RsError('EMPTY_SPACE', `search space '${name}' has no choice points.`, { space: name });
  const names = new Set<string>();
  for (const c of choices) {
    if (c.options.length === 0) throw new RsError('EMPTY_SPACE', `choice point '${c.name}' of space '${name}' has no options.`, { space: name, choice: c.name });
    if (names.has(c.name)) throw new RsError('INVALID_ARGUMENT', `space '${name}' has two choice points named '${c.name}'.`, { space: name, choice: c.name });
    if (new Set(c.options).size !== c.options.length) throw new RsError('INVALID_ARGUMENT', `choice point '${c.name}' of space '${name}' repeats an option.`, { space: name, choice: c.name });
    names.add(c.name);
  }
  const frozen = choices.map((c) => ({ name: c.name, options: [...c.options] }));
  const space: SearchSpace = {
    name,
    choices: frozen,
    size: frozen.reduce((p, c) => p * c.options.length, 1),
    encode: (arch) => {
      checkArchitecture(space, arch);
      return options.encode ? options.encode(arch, frozen) : frozen.map((c, i) => `${c.name}=${c.options[arch[i]]}`).join(',');
    },
    decode: (text) => {
      if (typeof text !== 'string') throw new RsError('INVALID_ARCHITECTURE', `space '${name}': an architecture string was expected, got ${typeof text}.`, { space: name });
      const arch = options.decode ? options.decode(text, frozen) : decodeDefault(text, frozen, name);
      checkArchitecture(space, arch);
      return arch;
    },
    build: options.build
      ? (arch) => {
          checkArchitecture(space, arch);
          return (options.build as (a: Architecture) => GraphDef)(arch);
        }
      : undefined,
  };
  return space;
}

function decodeDefault(text: string, choices: readonly ChoicePoint[], space: string): number[] {
  const parts = text.split(',');
  if (parts.length !== choices.length) {
    throw new RsError('INVALID_ARCHITECTURE', `space '${space}': '${text}' has ${parts.length} parts, expected ${choices.length} (name=option, comma-separated).`, { space, text });
  }
  return parts.map((part, i) => {
    const [key, value, extra] = part.split('=');
    const c = choices[i];
    if (extra !== undefined || key !== c.name) throw new RsError('INVALID_ARCHITECTURE', `space '${space}': part ${i} of '${text}' should be '${c.name}=<option>', got '${part}'.`, { space, text });
    const index = c.options.indexOf(value);
    if (index < 0) throw new RsError('INVALID_ARCHITECTURE', `space '${space}': '${value}' is not an option of '${c.name}' (${c.options.join(', ')}).`, { space, text });
    return index;
  });
}

/** Throws INVALID_ARCHITECTURE unless `arch` picks a valid option at every choice point. */
export function checkArchitecture(space: SearchSpace, arch: Architecture): void {
  if (!Array.isArray(arch) || arch.length !== space.choices.length) {
    throw new RsError('INVALID_ARCHITECTURE', `space '${space.name}': an architecture has ${space.choices.length} choices, got ${Array.isArray(arch) ? arch.length : typeof arch}.`, { space: space.name });
  }
  arch.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v >= space.choices[i].options.length) {
      throw new RsError('INVALID_ARCHITECTURE', `space '${space.name}': choice '${space.choices[i].name}' must be an integer in [0, ${space.choices[i].options.length}), got ${String(v)}.`, { space: space.name, choice: space.choices[i].name });
    }
  });
}

/** A uniformly random architecture. */
export function randomArchitecture(space: SearchSpace, rng: SeededRng): number[] {
  return space.choices.map((c) => rng.int(c.options.length));
}

/**
 * One mutation (Real et al. 2019): one choice point, picked uniformly, gets a different option.
 * Choice points with a single option are never picked.
 */
export function mutateArchitecture(space: SearchSpace, arch: Architecture, rng: SeededRng): number[] {
  const mutable = space.choices.map((c, i) => (c.options.length > 1 ? i : -1)).filter((i) => i >= 0);
  const child = [...arch];
  if (mutable.length === 0) return child;
  const point = mutable[rng.int(mutable.length)];
  const offset = 1 + rng.int(space.choices[point].options.length - 1);
  child[point] = (arch[point] + offset) % space.choices[point].options.length;
  return child;
}
