import { Redis, type RedisOptions } from 'ioredis';
import { RsError } from '@rs/core';

/** Default queue name shared by controllers and workers. */
export const DEFAULT_QUEUE = 'rs-nas';

/** Parses a `redis://host:port[/db]` URL into ioredis options; anything else is INVALID_ARGUMENT. */
export function redisOptions(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RsError('INVALID_ARGUMENT', `'${url}' is not a Redis URL; expected redis://host:port (e.g. redis://127.0.0.1:6379).`, { url });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new RsError('INVALID_ARGUMENT', `'${url}' is not a Redis URL (protocol ${parsed.protocol}); expected redis://host:port.`, { url });
  }
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new RsError('INVALID_ARGUMENT', `'${url}': the database '${parsed.pathname.slice(1)}' is not a non-negative integer.`, { url });
  const options: RedisOptions = {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    db,
    // BullMQ's blocking connections need this; commands wait for a reconnect instead of failing.
    maxRetriesPerRequest: null,
  };
  if (parsed.username) options.username = decodeURIComponent(parsed.username);
  if (parsed.password) options.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === 'rediss:') options.tls = {};
  return options;
}

/**
 * Checks that a Redis server answers at `url` within `timeoutMs` (one connection, no retry, a
 * PING); otherwise throws QUEUE_UNREACHABLE naming the URL. Controllers and workers call it
 * before creating any queue object, so an unreachable server leaves nothing half-enqueued.
 */
export async function checkRedis(url: string, timeoutMs = 3000): Promise<void> {
  const options = redisOptions(url);
  const client = new Redis({ ...options, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (cause) {
    const why = lastError?.message ?? (cause as Error).message ?? String(cause);
    throw new RsError('QUEUE_UNREACHABLE', `no Redis server reachable at ${url} (${why}); start one (e.g. redis-server --port 6379) or pass the URL of a running one.`, { url, cause: String(cause) });
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}
