import { CommanderError } from 'commander';
import { RewindError, ValidationError } from '../../events/errors.js';
import { cliHint } from './hints.js';
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
