// The served model's history on disk: every accepted version as a core model file (safetensors,
// with its edit journal inside), an append-only event journal, and a pointer to the version
// being served. Writes are ordered so that a crash at any point leaves a consistent directory:
// the version file first (temporary name, fsync, rename), then its journal line (fsync), then
// the pointer (temporary name, fsync, rename). A restart reads the pointer.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { RsError } from '@rs/core';

/** One line of the event journal (`journal.jsonl`). */
export interface OnlineEvent {
  /** Wall-clock time (ISO 8601). */
  time: string;
  kind: 'initial' | 'accepted' | 'rejected' | 'refused' | 'rolledBack' | 'workerFailed' | 'restarted';
  /** The version served after this event. */
  serving: number;
  /** The version this event made (accepted) or undid (rolledBack). */
  version?: number;
  policy?: string;
  reason?: string;
  /** For refused and workerFailed: the error's code and message. */
  error?: { code: string; message: string };
  details?: Record<string, unknown>;
}

interface Pointer {
  version: number;
  file: string;
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w');
  try {
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/** As writeAtomic, without blocking the event loop (the serving path keeps answering meanwhile). */
async function writeAtomicAsync(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

/**
 * The directory of a served model (see the file comment for the layout and the write order).
 *
 * @example
 * const store = new VersionStore('served');
 * if (store.current() === undefined) store.writeVersion(0, saveToBuffer(model));
 */
export class VersionStore {
  readonly dir: string;

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir.length === 0) throw new RsError('INVALID_ARGUMENT', `The store directory must be a non-empty path, got ${JSON.stringify(dir)}.`);
    this.dir = dir;
    mkdirSync(join(dir, 'versions'), { recursive: true });
  }

  fileOf(version: number): string {
    return join(this.dir, 'versions', `v${String(version).padStart(5, '0')}.rsm`);
  }

  /** Writes a version's model file (durable before it returns). */
  writeVersion(version: number, bytes: Uint8Array): void {
    writeAtomic(this.fileOf(version), bytes);
  }

  /** As writeVersion, asynchronously. */
  writeVersionAsync(version: number, bytes: Uint8Array): Promise<void> {
    return writeAtomicAsync(this.fileOf(version), bytes);
  }

  readVersion(version: number): Uint8Array {
    const path = this.fileOf(version);
    if (!existsSync(path)) throw new RsError('IO_NOT_A_MODEL', `Version ${version} has no file in ${this.dir} (${path}).`);
    const bytes = readFileSync(path);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Appends one event, durable before it returns. */
  append(event: OnlineEvent): void {
    const fd = openSync(join(this.dir, 'journal.jsonl'), 'a');
    try {
      writeSync(fd, `${JSON.stringify(event)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** As append, asynchronously. */
  async appendAsync(event: OnlineEvent): Promise<void> {
    const file = await open(join(this.dir, 'journal.jsonl'), 'a');
    try {
      await file.writeFile(`${JSON.stringify(event)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
  }

  /** Every event so far (a torn last line, from a crash while appending, is ignored). */
  events(): OnlineEvent[] {
    const path = join(this.dir, 'journal.jsonl');
    if (!existsSync(path)) return [];
    const out: OnlineEvent[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as OnlineEvent);
      } catch {
        // Only the last line can be torn (appends are sequential and fsynced).
      }
    }
    return out;
  }

  /** Points the store at a version whose file is already written. */
  setCurrent(version: number): void {
    const pointer: Pointer = { version, file: this.fileOf(version) };
    writeAtomic(join(this.dir, 'current.json'), new TextEncoder().encode(JSON.stringify(pointer)));
  }

  /** As setCurrent, asynchronously. */
  setCurrentAsync(version: number): Promise<void> {
    const pointer: Pointer = { version, file: this.fileOf(version) };
    return writeAtomicAsync(join(this.dir, 'current.json'), new TextEncoder().encode(JSON.stringify(pointer)));
  }

  /** The version being served, or undefined for a new store. */
  current(): number | undefined {
    const path = join(this.dir, 'current.json');
    if (!existsSync(path)) return undefined;
    const pointer = JSON.parse(readFileSync(path, 'utf8')) as Pointer;
    if (!Number.isInteger(pointer.version) || !existsSync(this.fileOf(pointer.version))) {
      throw new RsError('IO_CORRUPT', `${path} points at version ${String(pointer.version)}, which has no model file.`);
    }
    return pointer.version;
  }

  /** The highest version number with a file (new versions are numbered after it). */
  lastVersion(): number {
    let last = -1;
    for (const event of this.events()) if (event.version !== undefined) last = Math.max(last, event.version);
    return Math.max(last, this.current() ?? -1);
  }
}
