import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerAuditCommands } from './commands/audit.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerLogCommands } from './commands/log.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerProjectionCommands } from './commands/projections.js';
import { registerReactionCommands } from './commands/reactions.js';
import { registerReplayCommands } from './commands/replay.js';
import { registerRunCommands } from './commands/runs.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTimeTravelCommands } from './commands/time-travel.js';
import { registerWorkerCommand } from './commands/worker.js';
import { DEFAULT_DB } from './context.js';
import { problemOf, writeProblem } from './errors.js';
import { EXIT, exitCodeFor } from './exit-codes.js';

/** `json`: errors go to stderr as one JSON object instead of text (commander's own messages included). */
export function buildProgram({ json = false }: { json?: boolean } = {}): Command {
  const program = new Command('rewind')
    .description('Rewind: durable, rewindable agent runs on an append-only, hash-chained log')
    .version(packageVersion(), '-V, --version', 'print the version of rewind-runtime')
    .option('--db <url>', `the store: sqlite:<path>, postgres://… or memory: (default $REWIND_DB or ${DEFAULT_DB})`)
    .option('--json', 'machine-readable output (errors too: {"error":{code,message,hint}} on stderr)')
    .exitOverride();
  // Set before the commands are added, which inherit it.
  if (json) program.configureOutput({ writeErr: () => {} });
  else program.showHelpAfterError();
  registerRunCommands(program);
  registerTimeTravelCommands(program);
  registerLogCommands(program);
  registerAuditCommands(program);
  registerProjectionCommands(program);
  registerReactionCommands(program);
  registerReplayCommands(program);
  registerWorkerCommand(program);
  registerServeCommand(program);
  registerMcpCommand(program);
  registerBenchCommand(program);
  return program;
}

/** Runs the CLI and returns its exit code (never calls process.exit, so it can be tested in-process). */
export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const program = buildProgram({ json });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    const code = exitCodeFor(error);
    // --help and --version end here too, successfully; commander printed its other errors already, unless under --json.
    if (error instanceof CommanderError && (code === EXIT.ok || !json)) return code;
    writeProblem(problemOf(error), json);
    return code;
  }
}

/** The version in the package.json of the installed package (or of this repository). */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'rewind-runtime' && manifest.version) return manifest.version;
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
