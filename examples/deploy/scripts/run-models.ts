// Bun and Deno side of the cross-runtime check (test/deploy.test.ts): the published packages
// (their builds, as an application installing them from npm gets) with @rs/backend-wasm, the
// inputs from a JSON file, the outputs to another.
//
//   bun scripts/run-models.ts inputs.json outputs.json
//   deno run -A scripts/run-models.ts inputs.json outputs.json
import { readFileSync, writeFileSync } from 'node:fs';
import { isRsError } from '@rs/core';
import { install, threadSupport } from '@rs/backend-wasm';
import { computeChecked, type ComputeInputs } from '../src/compute.ts';

const [input, output] = process.argv.slice(2);
const support = threadSupport();
// Where threads cannot run (Deno), asking for them is a typed error, and the default runs on one.
let threadsRequest: { threw: boolean; code?: string; message?: string } = { threw: false };
if (!support.available) {
  try {
    await install({ threads: 4 });
  } catch (error) {
    threadsRequest = { threw: true, code: isRsError(error) ? error.code : undefined, message: (error as Error).message };
  }
}
const info = await install(support.available ? { threads: 1 } : {});
const outputs = await computeChecked(JSON.parse(readFileSync(input, 'utf8')) as ComputeInputs);
writeFileSync(output, JSON.stringify({ outputs, threadsRequest, support, threads: info.capabilities?.threads }));
// The wasm backend's worker threads (Bun) would keep the process alive.
process.exit(0);
