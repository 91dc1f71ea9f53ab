import { readFileSync, writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { ValidationError } from '../../../events/errors.js';
import { checkProof } from '../../../events/proof.js';
import { generateKeyPair } from '../../../events/signing.js';
import type { Digest } from '../../../events/tree-head.js';
import type { Problem, VerifyReport } from '../../../store/index.js';
import { type GlobalOptions, withStore } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { collect, publicKeys, signingKey, signingKeyIf } from '../keys.js';
import { colour, printJson } from '../output.js';
import { progressBar } from '../progress.js';
import { streamNotFound } from './log.js';

const KEY_HELP = 'the Ed25519 private key (PEM file); default $REWIND_SIGNING_KEY (the PEM, or its path)';
const PUBLIC_KEY_HELP =
  'a public key (PEM file) signatures must hold under; repeatable; default $REWIND_PUBLIC_KEY, else the signing key’s';

/** The audit trail: keygen, digest, seal, verify, prove, check-proof. */
export function registerAuditCommands(program: Command): void {
  program
    .command('verify')
    .description('check every chain, row, position and seal; with --digest, that the log still holds exactly what the digest signed')
    .argument('[stream]', 'only this stream (a run id is a stream too)')
    .option('--digest <file>', 'a digest made by `rewind digest`')
    .option('--public-key <file>', PUBLIC_KEY_HELP, collect)
    .addHelpText(
      'after',
      [
        '',
        'Exit 1 when anything is wrong; every problem names its stream, version and position.',
        'Without a digest or seals, a deleted newest event of a stream (or of the log) leaves nothing to find: see the README.',
        '',
        'Examples:',
        '  rewind verify',
        '  rewind verify run-42 --json',
        '  rewind verify --digest digest-2026-01-31.json --public-key rewind-signing-key.pub.pem',
      ].join('\n'),
    )
    .action(async (stream: string | undefined, opts: { digest?: string; publicKey?: string[] }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const digest = opts.digest === undefined ? undefined : (readJson(opts.digest, 'digest') as Digest);
      const keys = publicKeys(opts.publicKey);
      const bar = progressBar(' {bar} {percentage}% | position {value}/{total} | {rate} events/s | {eta_formatted} left', options.json);
      const started = performance.now();
      let report: VerifyReport;
      try {
        // Read-only: an archived copy of the log is checked without a byte of it changing.
        report = await withStore(
          options,
          async (store) => {
            const report = await store.verify({
              ...(stream ? { streamId: stream } : {}),
              ...(digest ? { digest } : {}),
              publicKeys: keys,
              onProgress: (p) => {
                const seconds = (performance.now() - started) / 1000;
                const rate = Math.round(seconds > 0 ? p.events / seconds : 0).toLocaleString('en-US');
                if (!bar) return;
                if (bar.getTotal() !== p.head) bar.start(p.head, p.position, { rate });
                bar.update(p.position, { rate });
              },
            });
            if (stream && report.streams === 0) throw await streamNotFound(store, stream);
            return report;
          },
          'read',
        );
      } finally {
        bar?.stop();
      }
      if (options.json) printJson(report);
      else printReport(report, (performance.now() - started) / 1000);
      process.exitCode = report.ok ? EXIT.ok : EXIT.failed;
    });

  program
    .command('keygen')
    .description('make an Ed25519 key pair for digests and seals')
    .option('--out <file>', 'where to write the private key (the public key goes beside it, .pub.pem)', 'rewind-signing-key.pem')
    .addHelpText(
      'after',
      [
        '',
        'Keep the private key out of the database and its backups: whoever holds it can sign a rewritten log.',
        'Give the public key to whoever verifies. An existing file is never overwritten.',
        '',
        'Examples:',
        '  rewind keygen',
        '  rewind keygen --out /etc/rewind/signing.pem',
      ].join('\n'),
    )
    .action((opts: { out: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const pair = generateKeyPair();
      const publicFile = opts.out.replace(/(\.pem)?$/, '.pub.pem');
      write(opts.out, pair.privateKey, 0o600);
      write(publicFile, pair.publicKey, 0o644);
      if (options.json) return printJson({ privateKey: opts.out, publicKey: publicFile, keyId: pair.keyId });
      console.log(
        `${colour.green('✓')} key ${colour.bold(pair.keyId)}: private ${opts.out} (keep it outside the database), public ${publicFile}`,
      );
    });

  program
    .command('digest')
    .description('sign the log up to a position (default the head) after verifying it; keep the digest outside the database')
    .option('--position <n>', 'cover the events at or below this position', parsePosition)
    .option('--key <file>', KEY_HELP)
    .option('--out <file>', 'write the digest here instead of printing it')
    .addHelpText(
      'after',
      [
        '',
        'The digest holds the Merkle root over every event in position order, the tree’s peaks and every stream’s head',
        '(about 100 bytes per stream). `rewind verify --digest FILE` later proves the log still holds exactly that prefix.',
        '',
        'Examples:',
        '  rewind digest --out digest-$(date +%F).json',
        '  rewind digest --position 1000000 --key /etc/rewind/signing.pem > digest.json',
      ].join('\n'),
    )
    .action(async (opts: { position?: number; key?: string; out?: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const key = signingKey(opts.key);
      const digest = await withStore(
        options,
        (store) => store.digest({ signingKey: key, ...(opts.position !== undefined ? { position: opts.position } : {}) }),
        'read',
      );
      const text = `${JSON.stringify(digest, null, 2)}\n`;
      if (opts.out === undefined) return void process.stdout.write(text);
      write(opts.out, text, 0o644);
      const th = digest.treeHead;
      if (options.json) return printJson({ file: opts.out, treeHead: th });
      console.log(
        `${colour.green('✓')} ${count(th.size, 'event')} up to position ${th.position} in ${count(digest.heads.length, 'stream')}, root ${th.root.slice(0, 16)}…, key ${th.keyId}: ${opts.out}`,
      );
    });

  program
    .command('seal')
    .description('write a signed seal of everything appended since the last one into the log')
    .option('--key <file>', KEY_HELP)
    .addHelpText(
      'after',
      [
        '',
        'A later `rewind verify --public-key` then needs nothing else to prove the log up to the newest seal.',
        '`rewind worker` seals periodically when it has a key.',
        '',
        'Examples:',
        '  rewind seal',
        '  rewind seal --key /etc/rewind/signing.pem --json',
      ].join('\n'),
    )
    .action(async (opts: { key?: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const key = signingKey(opts.key);
      const seal = await withStore(options, (store) => store.seal({ signingKey: key }));
      if (options.json)
        return printJson(seal ? { sealed: true, position: seal.position, treeHead: seal.digest.treeHead } : { sealed: false });
      if (!seal) return console.log(colour.dim('nothing new since the last seal'));
      const th = seal.digest.treeHead;
      console.log(
        `${colour.green('✓')} sealed ${count(th.size, 'event')} up to position ${th.position} (${count(seal.digest.heads.length, 'stream')} changed); the seal is at position ${seal.position}`,
      );
    });

  program
    .command('prove')
    .description('a proof that one event is in the log, which anyone with the public key can check without the log')
    .argument('<event-id>', 'the event')
    .option(
      '--digest <file>',
      'prove against this digest (default: the earliest seal covering the event, else a tree head signed now with the key)',
    )
    .option('--key <file>', KEY_HELP)
    .option('--out <file>', 'write the proof here instead of printing it')
    .addHelpText(
      'after',
      ['', 'Examples:', '  rewind prove 0190f3c2-…', '  rewind prove 0190f3c2-… --digest digest.json --out proof.json'].join('\n'),
    )
    .action(async (eventId: string, opts: { digest?: string; key?: string; out?: string }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const digest = opts.digest === undefined ? undefined : (readJson(opts.digest, 'digest') as Digest);
      const key = signingKeyIf(opts.key);
      const proof = await withStore(
        options,
        (store) => store.prove(eventId, { ...(digest ? { digest } : {}), ...(key ? { signingKey: key } : {}) }),
        'read',
      );
      const text = `${JSON.stringify(proof, null, 2)}\n`;
      if (opts.out === undefined) return void process.stdout.write(text);
      write(opts.out, text, 0o644);
      console.log(`${colour.green('✓')} proof of ${eventId} (${proof.path.length} hashes): ${opts.out}`);
    });

  program
    .command('check-proof')
    .description('check an inclusion proof with the public key alone (no database)')
    .argument('<file>', 'a proof made by `rewind prove`')
    .option('--public-key <file>', PUBLIC_KEY_HELP, collect)
    .addHelpText('after', ['', 'Examples:', '  rewind check-proof proof.json --public-key rewind-signing-key.pub.pem'].join('\n'))
    .action((file: string, opts: { publicKey?: string[] }, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const keys = publicKeys(opts.publicKey);
      if (keys.length === 0)
        throw new ValidationError('no public key to check the proof with', [], 'pass --public-key FILE or set REWIND_PUBLIC_KEY');
      const result = checkProof(readJson(file, 'proof'), keys);
      process.exitCode = result.ok ? EXIT.ok : EXIT.failed;
      if (options.json) return printJson(result);
      const e = result.event;
      const what = e ? `event ${e.id} (${e.streamId}@${e.version}, ${e.type}, position ${e.position})` : 'the event';
      if (!result.ok) return console.log(`${colour.red('✗')} ${what}: ${result.reason}`);
      const th = result.treeHead;
      console.log(
        `${colour.green('✓')} ${what} is in the log of ${count(th.size, 'event')} up to position ${th.position} that key ${th.keyId} signed at ${th.at}`,
      );
    });
}

function printReport(report: VerifyReport, seconds: number): void {
  // A rate over a fraction of a second measures the start-up, not the walk.
  const rate = seconds >= 1 ? `, ${Math.round(report.events / seconds).toLocaleString('en-US')} events/s` : '';
  const scope = `${count(report.events, 'event')} in ${count(report.streams, 'stream')} up to position ${report.position}`;
  const { seals, digest } = report;
  const notes: string[] = [];
  if (seals.found > 0) {
    notes.push(`${count(seals.verified, 'seal')} verified up to position ${seals.coveredTo}`);
    if (seals.unverified > 0) notes.push(`${count(seals.unverified, 'seal')} compared without a key that signed them`);
  }
  if (digest) {
    notes.push(`the digest (position ${digest.position}, ${count(digest.size, 'event')}, signature ${digest.signature})`);
  }
  if (report.ok) {
    console.log(
      `${colour.green('✓')} ${scope}: everything holds${notes.length ? ` · ${notes.join(' · ')}` : ''} (${seconds.toFixed(1)}s${rate})`,
    );
    if (seals.found === 0 && !digest) {
      console.log(
        colour.dim('  no seal or digest: a deleted newest event of a stream or of the log would not show (rewind seal, rewind digest)'),
      );
    }
    return;
  }
  console.log(`${colour.red('✗')} ${count(report.problemCount, 'problem')} in ${scope}${notes.length ? ` · ${notes.join(' · ')}` : ''}`);
  for (const p of report.problems) console.log(`  ${colour.yellow(p.kind.padEnd(17))} ${where(p)}: ${p.message}`);
  if (report.problemCount > report.problems.length) {
    console.log(
      colour.dim(`  … and ${report.problemCount - report.problems.length} more (--json lists the first ${report.problems.length})`),
    );
  }
}

function where(p: Problem): string {
  const stream = p.streamId === undefined ? '' : colour.bold(`${p.streamId}${p.version === undefined ? '' : `@${p.version}`}`);
  const position = p.position === undefined ? '' : `position ${p.position}`;
  return [stream, position].filter(Boolean).join(' ') || 'the log';
}

const count = (n: number, word: string) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ValidationError(`cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`the ${what} ${file} is not JSON: ${(error as Error).message}`);
  }
}

function write(file: string, text: string, mode: number): void {
  try {
    writeFileSync(file, text, { mode, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ValidationError(
      `cannot write ${file}: ${code === 'EEXIST' ? 'it exists already' : (code ?? (error as Error).message)}`,
      [],
      code === 'EEXIST' ? 'choose another file with --out; nothing is overwritten' : undefined,
    );
  }
}

function parsePosition(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a position (a whole number)');
  return n;
}
