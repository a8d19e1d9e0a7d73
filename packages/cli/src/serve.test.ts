// rs serve: starts @rs/online's HTTP server on a saved model, answers, stops on SIGTERM; a
// second start on the same --dir resumes from the store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, lenet300100, save, tf } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { runCli } from './index';

let dir: string;

beforeAll(async () => {
  await install();
  dir = mkdtempSync(join(tmpdir(), 'rs-serve-'));
  const model = Model.create(lenet300100({ inputs: 4, hidden: [6, 5], classes: 3 }), { seed: 0 });
  await save(model, join(dir, 'tiny.rsm'));
  model.dispose();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `rs serve ...`, calls `body` with its base URL once it listens, then sends SIGTERM. */
async function serve(args: string[], body: (base: string) => Promise<void>): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  let listening: (base: string) => void = () => undefined;
  const started = new Promise<string>((resolve) => (listening = resolve));
  const done = runCli(['serve', ...args], {
    stdout: {
      write: (s: string) => {
        stdout += s;
        const url = /on (http:\/\/[0-9.]+:[0-9]+)/.exec(stdout);
        if (url) listening(url[1]!);
        return true;
      },
      isTTY: false,
    },
    stderr: { write: (s: string) => (stderr += s), isTTY: false, columns: 120 },
    cwd: dir,
  });
  const base = await Promise.race([started, done.then((status) => Promise.reject(new Error(`rs serve exited (${status}) before listening: ${stderr}`)))]);
  try {
    await body(base);
  } finally {
    process.emit('SIGTERM');
  }
  return { status: await done, stdout, stderr };
}

describe('rs serve', () => {
  it('serves a saved model over HTTP and resumes from its store', async () => {
    const before = tf.memory().numTensors;
    const args = ['tiny.rsm', '--dir', 'served', '--port', '0', '--backend', 'cpu'];
    const first = await serve(args, async (base) => {
      expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok', version: 0 });
      const answer = (await (await fetch(`${base}/predict`, { method: 'POST', body: JSON.stringify({ input: [0.1, 0.2, 0.3, 0.4] }) })).json()) as { label: number; version: number };
      expect(answer.version).toBe(0);
      expect(answer.label).toBeGreaterThanOrEqual(0);
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^rs_online_requests_total 1$/m);
    });
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/stopped serving version 0/);
    const second = await serve(args, async (base) => {
      expect(((await (await fetch(`${base}/health`)).json()) as { version: number }).version).toBe(0);
    });
    expect(second.status).toBe(0);
    expect(second.stderr).toMatch(/restarted, serving v0/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an unknown policy with a typed error', async () => {
    let stderr = '';
    const status = await runCli(['serve', 'tiny.rsm', '--dir', 'served2', '--port', '0', '--backend', 'cpu', '--policies', 'noSuchPolicy'], {
      stdout: { write: () => true, isTTY: false },
      stderr: { write: (s: string) => (stderr += s), isTTY: false, columns: 120 },
      cwd: dir,
    });
    expect(status).toBe(1);
    expect(stderr).toMatch(/\[INVALID_ARGUMENT\] Unknown policy 'noSuchPolicy'/);
  });
});
