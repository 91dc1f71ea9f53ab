import { RewindError } from '../../events/errors.js';
import type { VerifyReport } from './report.js';

/**
 * The log does not verify, so Rewind will not sign it (digest, seal) or
 * prove from it. `report` says what is wrong; `rewind verify` shows it.
 */
export class LogCorruptError extends RewindError {
  readonly report: VerifyReport | undefined;

  constructor(message: string, report?: VerifyReport) {
    const first = report?.problems[0];
    super(
      'LOG_CORRUPT',
      first ? `${message}: ${report.problemCount} problem${report.problemCount === 1 ? '' : 's'}, the first ${describe(first)}` : message,
      'run `rewind verify` for every problem; restore the damaged rows from a backup',
    );
    this.report = report;
  }
}

function describe(p: VerifyReport['problems'][number]): string {
  const where = [p.streamId && `stream "${p.streamId}"`, p.version && `version ${p.version}`, p.position && `position ${p.position}`]
    .filter(Boolean)
    .join(', ');
  return `${where ? `at ${where}` : ''}: ${p.message}`;
}
