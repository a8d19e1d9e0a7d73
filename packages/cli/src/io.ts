/** A stream the CLI writes to: `process.stdout`/`process.stderr`, or a capture in tests. */
export interface CliStream {
  write(chunk: string): unknown;
  /** True on a terminal: progress bars are drawn only then (else plain lines). */
  isTTY?: boolean;
  /** Terminal width, where known. */
  columns?: number;
}

/** Where a CLI run reads and writes. `runCli` never touches `process` streams directly. */
export interface CliIo {
  stdout: CliStream;
  stderr: CliStream;
  /** Directory relative paths are resolved against (default `process.cwd()`). */
  cwd?: string;
}

/** The real process streams. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() };
}

/** Options every command understands. */
export interface CommonOptions {
  json?: boolean;
  quiet?: boolean;
  plugin?: string[];
}

/** Per-run context handed to commands. */
export interface Context {
  io: CliIo;
  cwd: string;
  json: boolean;
  quiet: boolean;
  /** Human-readable output (suppressed with --json). */
  out(line?: string): void;
  /** Diagnostics on stderr (suppressed with --quiet). */
  note(line: string): void;
  /** The one JSON document of a `--json` run. */
  emitJson(value: unknown): void;
}

export function createContext(io: CliIo, options: CommonOptions): Context {
  const json = options.json === true;
  const quiet = options.quiet === true;
  return {
    io,
    cwd: io.cwd ?? process.cwd(),
    json,
    quiet,
    out(line = '') {
      if (!json) io.stdout.write(`${line}\n`);
    },
    note(line) {
      if (!quiet) io.stderr.write(`${line}\n`);
    },
    emitJson(value) {
      if (json) io.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
    },
  };
}

/** JSON has no typed arrays, NaN or Infinity: write arrays and null. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}
