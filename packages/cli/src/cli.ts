import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { runner } from './command';
import { describeError, exitCodeOf } from './errors';
import type { CliIo } from './io';
import { trainCommand } from './commands/train';
import { inspectCommand } from './commands/inspect';
import { pruneCommand } from './commands/prune';
import { growCommand } from './commands/grow';
import { exportCommand } from './commands/export';
import { reportCommand } from './commands/report';
import { benchCommand } from './commands/bench';
import { searchCommand } from './commands/search';
import { workerCommand } from './commands/worker';
import { importCommand } from './commands/import';
import { serveCommand } from './commands/serve';

function version(): string {
  // package.json sits one level above both src/ and dist/.
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The `rs` program, writing through `io`. */
export function createProgram(io: CliIo): Command {
  const run = runner(io);
  const program = new Command('rs')
    .description('Train, reorganize (prune, grow), inspect, export, report and benchmark @rs models.')
    .version(version(), '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Errors are printed by runCli in one format (or as JSON), not by commander.
      outputError: () => undefined,
    })
    .exitOverride();
  for (const make of [trainCommand, pruneCommand, growCommand, inspectCommand, exportCommand, importCommand, reportCommand, benchCommand, searchCommand, workerCommand, serveCommand]) {
    const command = make(run);
    command.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: () => undefined });
    program.addCommand(command);
  }
  return program;
}

/**
 * Runs the command line in this process and resolves to the exit status: 0 on success, 1 on an
 * error, 2 on a usage error (code `USAGE`). Errors are one line on stderr,
 * `rs <command>: [CODE] message`, or with --json the document `{ "error": { code, message } }`
 * on stdout.
 *
 * @example
 * const status = await runCli(['inspect', 'model.rsm', '--json'], { stdout, stderr });
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  const program = createProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    let code: string;
    let message: string;
    if (error instanceof CommanderError) {
      // --help and --version end through exitOverride too, with status 0.
      if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      code = 'USAGE';
      message = error.message.replace(/^error: /, '');
      if (argv.length === 0 || error.code === 'commander.executeSubCommandAsync') message = 'no command given';
    } else {
      ({ code, message } = describeError(error));
    }
    const name = argv.find((a) => !a.startsWith('-'));
    if (json) {
      io.stdout.write(`${JSON.stringify({ error: { code, message } }, null, 2)}\n`);
    } else {
      io.stderr.write(`rs${name && program.commands.some((c) => c.name() === name) ? ` ${name}` : ''}: [${code}] ${message}\n`);
      if (code === 'USAGE') io.stderr.write(`run 'rs ${name && program.commands.some((c) => c.name() === name) ? `${name} ` : ''}--help' for usage\n`);
      if (code === 'INTERNAL' && process.env.RS_DEBUG && error instanceof Error) io.stderr.write(`${error.stack}\n`);
    }
    return exitCodeOf(code);
  }
}
