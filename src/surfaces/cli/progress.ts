import cliProgress from 'cli-progress';

/** A progress bar on stderr, or undefined when stderr is not a terminal or the output is JSON. */
export function progressBar(format: string, json: boolean | undefined): cliProgress.SingleBar | undefined {
  if (json || !process.stderr.isTTY) return undefined;
  return new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, etaBuffer: 20 }, cliProgress.Presets.shades_classic);
}
