// The queue-search tests (@rs/nas-queue) need a Redis server. startRedis() finds `redis-server`
// (REDIS_SERVER, then PATH and the usual paths), installs Debian's `redis-server` package with
// apt-get when none is found (as root, or through passwordless sudo), starts a private server on
// 127.0.0.1 on a free port (no persistence, its own temporary directory) and returns its URL and
// a stop() that ends it. When Redis cannot be had it throws an Error saying how to get it.
//   node scripts/ensure-redis.mjs         prints the path of redis-server (installing it if needed)
import { execSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CANDIDATES = ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/usr/sbin/redis-server'];

function which(command) {
  try {
    return execSync(`command -v ${command}`, { stdio: ['ignore', 'pipe', 'ignore'], shell: '/bin/sh' }).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

function canSudo() {
  try {
    execSync('sudo -n true', { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const HOW = 'Install it (Debian/Ubuntu: `sudo apt-get install redis-server`) or set REDIS_SERVER to a redis-server binary, then run the tests again.';

/** The path of a redis-server binary, or undefined. */
export function findRedisServer() {
  if (process.env.REDIS_SERVER) return existsSync(process.env.REDIS_SERVER) ? process.env.REDIS_SERVER : undefined;
  return which('redis-server') ?? CANDIDATES.find((p) => existsSync(p));
}

/** Finds or installs redis-server; returns its path or throws an Error saying how to get one. */
export function ensureRedisServer() {
  const found = findRedisServer();
  if (found) return found;
  if (process.env.REDIS_SERVER) throw new Error(`[setup] REDIS_SERVER is set to ${process.env.REDIS_SERVER}, which does not exist. ${HOW}`);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? '' : which('sudo') && canSudo() ? 'sudo -n ' : undefined;
  if (process.platform !== 'linux' || !which('apt-get') || sudo === undefined) {
    throw new Error(`[setup] The queue tests need Redis: no redis-server found, and it cannot be installed here automatically (that needs apt-get, as root or with passwordless sudo). ${HOW}`);
  }
  console.log('[setup] installing Redis for the queue tests (apt-get install redis-server)');
  try {
    execSync(`${sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo}apt-get install -y -qq --no-install-recommends redis-server`, { stdio: ['ignore', 'ignore', 'inherit'], shell: '/bin/sh' });
  } catch {
    throw new Error(`[setup] apt-get could not install the redis-server package (see its message above). ${HOW}`);
  }
  const installed = findRedisServer();
  if (!installed) throw new Error(`[setup] apt-get installed redis-server, but no redis-server binary was found afterwards. ${HOW}`);
  return installed;
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.once('error', () => resolve(false));
    socket.on('data', (data) => {
      answer += data.toString();
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

/** Starts a private redis-server; resolves to { url, port, stop() } once it answers PING. */
export async function startRedis({ timeoutMs = 10_000 } = {}) {
  const binary = ensureRedisServer();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rs-redis-'));
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      await new Promise((resolve) => (exited ? resolve() : child.once('exit', resolve)));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await ping(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`[setup] ${binary} did not start on port ${port} within ${timeoutMs} ms${stderr ? `: ${stderr.trim()}` : ''}. ${HOW}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    console.log(ensureRedisServer());
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}
