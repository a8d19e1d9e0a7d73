import type { TestProject } from 'vitest/node';
// @ts-expect-error: a plain .mjs script of the repository, without declarations.
import { startRedis } from '../../../scripts/ensure-redis.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

// Starts a private redis-server (installing Debian's package when missing) for this package's
// tests and stops it afterwards; without Redis the run fails with the script's message.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = (await startRedis()) as { url: string; stop: () => Promise<void> };
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
