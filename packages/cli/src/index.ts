/**
 * @rs/cli: the `rs` command line. `runCli(argv, io)` runs it in-process (tests, embedding);
 * the `rs` binary (`dist/bin.js`) runs it on the process streams.
 */
export { runCli, createProgram } from './cli';
export type { CliIo, CliStream } from './io';
export { processIo } from './io';
export { CliError } from './errors';
export type { CliErrorCode } from './errors';
export { createRegistry } from './runtime';
export { describeModel } from './commands/inspect';
