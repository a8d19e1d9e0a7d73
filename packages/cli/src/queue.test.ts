import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from './index';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'rs-cli-queue-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rs(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await runCli(args, { stdout: { write: (s: string) => (stdout += s), isTTY: false }, stderr: { write: (s: string) => (stderr += s), isTTY: false, columns: 120 }, cwd: dir });
  return { status, stdout, stderr };
}

describe('rs search --queue with rs worker', () => {
  it('a worker process evaluates the trials: same results and best as the local search', async () => {
    const url = inject('redisUrl');
    const bin = new URL('../dist/bin.js', import.meta.url).pathname;
    const worker = spawn(process.execPath, [bin, 'worker', '--queue', url, '--queue-name', 'cli-test', '--backend', 'cpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      worker.stderr.on('data', (d: Buffer) => d.toString().includes('taking trials') && resolve());
      worker.once('exit', (code) => reject(new Error(`rs worker exited with ${code}`)));
    });
    const args = ['search', '--strategy', 'evolution', '--evaluations', '16', '--parallel', '2', '--seed', '5', '--json', '--quiet'];
    const queued = await rs([...args, '--queue', url, '--queue-name', 'cli-test']);
    const local = await rs(args);
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(queued.stderr).toBe('');
    expect(queued.status).toBe(0);
    const [a, b] = [JSON.parse(queued.stdout), JSON.parse(local.stdout)] as Array<{ best: { encoded: string; validation: number }; anytime: Array<{ bestValidation: number }> }>;
    expect(a.best.encoded).toBe(b.best.encoded);
    expect(a.anytime.map((p) => p.bestValidation)).toEqual(b.anytime.map((p) => p.bestValidation));
    expect(out).toMatch(/16 trials evaluated/);
  });

  it('an unreachable Redis is QUEUE_UNREACHABLE naming the URL', async () => {
    const result = await rs(['search', '--queue', 'redis://127.0.0.1:1', '--evaluations', '3']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^rs search: \[QUEUE_UNREACHABLE\] no Redis server reachable at redis:\/\/127\.0\.0\.1:1 /);
  });
});
