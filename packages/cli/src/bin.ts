#!/usr/bin/env node
import { runCli } from './cli';
import { processIo } from './io';

// Set the status and let Node exit by itself, so piped stdout is flushed completely.
runCli(process.argv.slice(2), processIo()).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`rs: [INTERNAL] ${String(error)}\n`);
    process.exitCode = 1;
  },
);
