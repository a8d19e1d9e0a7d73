// A vitest globalSetup for the tests that need Redis (@rs/nas-queue, the CLI's queue test): starts
// a private redis-server (scripts/ensure-redis.mjs: installs Debian's package when missing) and
// provides its URL as inject('redisUrl'); stops it after the run. Without Redis the run fails
// with the script's message.
import { startRedis } from './ensure-redis.mjs';

export default async function setup(project) {
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
