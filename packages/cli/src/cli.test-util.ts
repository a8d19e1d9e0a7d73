// Shared harness of the CLI tests (cli-commands.test.ts, cli-behaviour.test.ts): `rs` runs the CLI in
// this process with captured streams, in a temporary directory that `useTinyModel` creates per test
// file, with a tiny trained LeNet-300-100 in it (tiny.rsm), and removes after.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import { tf } from '@rs/core';
import { runCli } from './index';

const here = fileURLToPath(new URL('.', import.meta.url));
export const packageRoot = resolve(here, '..');
/** The current test file's temporary directory (set by `useTinyModel`'s beforeAll). */
export let dir: string;

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
  /** Tensors alive after the command minus before it (must be 0). */
  leaked: number;
}

/** Runs `rs ...args` in this process with captured streams; `tty` fakes a terminal on stderr. */
export async function rs(args: string[], options: { tty?: boolean } = {}): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const before = tf.memory().numTensors;
  const status = await runCli(args, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: options.tty === true, columns: 120 },
    cwd: dir,
  });
  return { status, stdout, stderr, leaked: tf.memory().numTensors - before };
}

export const file = (name: string) => join(dir, name);
// A small LeNet-300-100 (784-32-16-10) trained for one epoch on 300 digits: seconds on cpu.
export const TINY = ['--model', 'lenet300100', '--hidden', '32,16', '--data', 'mnist', '--epochs', '1', '--batch-size', '64', '--train-size', '300', '--test-size', '200', '--backend', 'cpu'];

/** Registers the hooks that create `dir` with a trained tiny.rsm before the file's tests and remove it after. */
export function useTinyModel(): void {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rs-cli-'));
    const trained = await rs(['train', ...TINY, '--out', 'tiny.rsm', '--quiet']);
    expect(trained.stderr).toBe('');
    expect(trained.status).toBe(0);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
}
