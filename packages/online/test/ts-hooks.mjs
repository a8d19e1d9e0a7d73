// Test support: lets a forked Node process run this repository's TypeScript sources, as vitest
// does in the test process. Use as `node --conditions=@rs/source --import <this file>`.
import { register } from 'node:module';

register('./ts-hooks-impl.mjs', import.meta.url);
