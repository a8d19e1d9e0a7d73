import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared';

// The queue tests get a private Redis server (test/redis-setup.ts).
export default mergeConfig(shared, defineConfig({ test: { globalSetup: ['test/redis-setup.ts'] } }));
