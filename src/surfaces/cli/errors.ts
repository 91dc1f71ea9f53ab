import { CommanderError } from 'commander';
import { RewindError, ValidationError } from '../../events/errors.js';
import { colour, safe } from './output.js';

/** An error as the CLI reports it: `{ error: { code, message, hint?, issues? } }` under --json, a line of text otherwise. */
export interface CliProblem {
  code: string;
  message: string;
  hint?: string;
  issues?: readonly string[];
}

export function problemOf(error: unknown): CliProblem {
  if (error instanceof CommanderError) {
    return { code: 'USAGE', message: error.message.replace(/^error: /, ''), hint: 'see rewind --help, or rewind <command> --help' };
  }
  if (!(error instanceof RewindError)) {
    return { code: 'INTERNAL', message: (error as Error)?.stack ?? String(error) };
  }
  const hint = cliHint(error);
  return {
    code: error.code,
    message: messageWithoutHint(error),
    ...(hint ? { hint } : {}),
    ...(error instanceof ValidationError && error.issues.length > 0 ? { issues: error.issues } : {}),
  };
}

export function writeProblem(problem: CliProblem, json: boolean): void {
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: problem })}\n`);
    return;
  }
  // Line by line: a stack trace keeps its lines, and nothing else from the message reaches the terminal unescaped.
  process.stderr.write(`${colour.red('error')} ${problem.message.split('\n').map(safe).join('\n')}\n`);
  if (problem.hint) process.stderr.write(`${colour.dim(`  ${safe(problem.hint)}`)}\n`);
}

/** RewindError puts its hint after the message in parentheses; the CLI prints the hint on a line of its own. */
function messageWithoutHint(error: RewindError): string {
  const suffix = error.hint ? ` (${error.hint})` : '';
  return suffix && error.message.endsWith(suffix) ? error.message.slice(0, -suffix.length) : error.message;
}

/** The library's hints name API calls; on the terminal they name commands. */
function cliHint(error: RewindError): string | undefined {
  switch (error.code) {
    case 'RUN_NOT_FOUND':
      return 'list the runs with `rewind runs`; a run id has no "run-" prefix (its stream has)';
    case 'UNKNOWN_WORKFLOW':
      return 'pass the module that defines it: --workflows <module> (JavaScript, or TypeScript with tsx installed)';
    case 'RUN_STATE': {
      const status = (error as RewindError & { status?: string }).status;
      if (status === 'rolling_back' || status === 'needs_attention') {
        return 'a rollback in progress must finish first: `rewind retry <run>` runs its stuck compensation again, `rewind resolve <run> --note …` records that it was undone by hand';
      }
      return error.hint;
    }
    case 'IRREVERSIBLE_STEP':
      return 'roll back to a point after it, or accept leaving its effect as it is with --past-irreversible';
    case 'CHECKPOINT_NOT_FOUND':
      return error.hint?.replace("use to: 'start'", 'use --to start').replace("(or 'start')", '(or start)');
    case 'STORE_READ_ONLY':
      return 'this command writes: run it where the file and its directory are writable, or on a writable copy';
    case 'STORE_CLOSED':
      return undefined;
    default:
      return error.hint;
  }
}
