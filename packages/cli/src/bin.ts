#!/usr/bin/env node
import { runCli } from './cli';
import { processIo } from './io';

// `rs inspect m.rsm | head`: the reader went away; stop quietly, as Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

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
