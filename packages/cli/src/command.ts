import { Command, Option } from 'commander';
import { createContext, type CliIo, type CommonOptions, type Context } from './io';

/** Wraps a command handler: builds the run's context from the command's options. */
export type Runner = (handler: (context: Context, args: string[], options: Record<string, any>) => Promise<void>) => (...args: unknown[]) => Promise<void>;

export function runner(io: CliIo): Runner {
  return (handler) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const options = command.opts() as Record<string, any> & CommonOptions;
      const positional = args.slice(0, -2).flatMap((a) => (Array.isArray(a) ? (a as string[]) : [a as string]));
      await handler(createContext(io, options), positional, options);
    };
}

/** --json, --quiet and --plugin, on every command. */
export function common(command: Command): Command {
  return command
    .option('--json', 'print one JSON document on stdout (progress and notes stay on stderr)')
    .option('-q, --quiet', 'no progress bars or notes on stderr')
    .addOption(new Option('--plugin <module>', 'module registering extra ops (path or package; repeatable): exports register(registry)').argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]));
}

/** --backend and --threads, on commands that compute. */
export function backendOptions(command: Command, fallback = 'wasm'): Command {
  return command
    .option('--backend <name>', 'wasm (fast, all cores, also in browsers), native (fastest in Node: C kernels, system BLAS) or cpu (reference)', fallback)
    .option('--threads <n>', 'wasm or native threads (default: all cores)');
}
