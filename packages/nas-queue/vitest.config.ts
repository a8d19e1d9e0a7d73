import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared';

// The queue tests get a private Redis server (scripts/redis-global-setup.mjs).
export default mergeConfig(shared, defineConfig({ test: { globalSetup: ['../../scripts/redis-global-setup.mjs'] } }));
