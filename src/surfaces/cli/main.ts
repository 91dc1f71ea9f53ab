import { Command, CommanderError } from 'commander';
import { RewindError } from '../../events/errors.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerLogCommands } from './commands/log.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerProjectionCommands } from './commands/projections.js';
import { registerRunCommands } from './commands/runs.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTimeTravelCommands } from './commands/time-travel.js';
import { registerWorkerCommand } from './commands/worker.js';
import { DEFAULT_DB } from './context.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { colour } from './output.js';

export function buildProgram(): Command {
  const program = new Command('rewind')
    .description('Rewind: durable, rewindable agent runs on an append-only, hash-chained log')
    .option('--db <url>', `the store: sqlite:<path>, postgres://… or memory: (default $REWIND_DB or ${DEFAULT_DB})`)
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();
  registerRunCommands(program);
  registerTimeTravelCommands(program);
  registerLogCommands(program);
  registerAuditCommands(program);
  registerProjectionCommands(program);
  registerWorkerCommand(program);
  registerServeCommand(program);
  registerMcpCommand(program);
  registerBenchCommand(program);
  return program;
}

/** Runs the CLI and returns its exit code (never calls process.exit, so it can be tested in-process). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, successfully.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = exitCodeFor(error);
    if (error instanceof RewindError) {
      process.stderr.write(`${colour.red('error')} ${error.message}\n`);
    } else {
      process.stderr.write(`${colour.red('error')} ${(error as Error)?.stack ?? String(error)}\n`);
    }
    return code;
  }
}
