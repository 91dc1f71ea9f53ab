import { type Command, InvalidArgumentError } from 'commander';
import { openProjections, type Projections } from '../../../projections/index.js';
import { createRuntime } from '../../../runtime/index.js';
import { openStore } from '../../../store/open.js';
import { DEFAULT_BODY_LIMIT, DEFAULT_HOST, DEFAULT_PORT } from '../../http/defaults.js';
import type { RunningServer } from '../../http/server.js';
import { webDir } from '../../web/static-dir.js';
import { type GlobalOptions, storeUrl } from '../context.js';
import { colour, printJson } from '../output.js';
import { loadWorkflows } from '../workflows.js';
import { loadDefinitions } from './projections.js';

interface ServeOptions {
  host: string;
  port: number;
  tokenAdmin?: string;
  tokenRead?: string;
  bodyLimit: number;
  static?: string;
  workflows?: string;
  projections?: string;
}

/** `rewind serve`: the HTTP API (and, with --static, the web debugger) until SIGINT or SIGTERM. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the HTTP API (OpenAPI at /openapi.json) on 127.0.0.1 until interrupted')
    .option('--host <host>', 'address to listen on; anything but loopback needs a token', DEFAULT_HOST)
    .option('--port <n>', 'port to listen on (0: any free port)', parsePort, DEFAULT_PORT)
    .option('--token-admin <token>', 'bearer token that may read and write (default $REWIND_ADMIN_TOKEN)')
    .option('--token-read <token>', 'bearer token that may only read (default $REWIND_READ_TOKEN)')
    .option('--body-limit <bytes>', 'largest request body accepted', parseBytes, DEFAULT_BODY_LIMIT)
    .option('--static <dir>', 'serve these prebuilt files at / instead of the bundled web debugger')
    .option('--projections <module>', 'also report the projections exported (as `projections` or default) by this module')
    .option('--workflows <module>', 'module exporting the workflow definitions this server may run (default: the bundled examples)')
    .addHelpText(
      'after',
      [
        '',
        'Tokens on the command line show up in `ps`; prefer the environment variables.',
        '',
        'Examples:',
        '  rewind serve',
        '  rewind serve --db postgres://rewind@db/rewind --port 8080',
        '  REWIND_ADMIN_TOKEN=$(openssl rand -hex 32) rewind serve --host 0.0.0.0',
      ].join('\n'),
    )
    .action(async (opts: ServeOptions, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      const admin = opts.tokenAdmin ?? nonEmpty(process.env.REWIND_ADMIN_TOKEN);
      const read = opts.tokenRead ?? nonEmpty(process.env.REWIND_READ_TOKEN);
      // Runs of other workflows are still listed, shown and cancelled; a rollback
      // of one is recorded for a worker that has its code to carry out.
      // Loaded here, not at the top: every other command starts faster without the HTTP stack.
      const { startServer } = await import('../../http/server.js');
      const workflows = await loadWorkflows(opts.workflows);
      const definitions = await loadDefinitions(opts.projections);
      const store = await openStore(storeUrl(options));
      const runtime = createRuntime({ store, workflows });
      let server: RunningServer;
      let projections: Projections | undefined;
      let staticDir: string | undefined;
      try {
        // Only looks: building the read models is the workers' job, not the API's.
        projections = await openProjections(store, definitions, { readOnly: true });
        staticDir = opts.static ?? webDir();
        server = await startServer({
          store,
          runtime,
          workflows,
          projections,
          host: opts.host,
          port: opts.port,
          tokens: { admin, read },
          bodyLimit: opts.bodyLimit,
          staticDir,
        });
      } catch (error) {
        await projections?.close();
        await store.close();
        throw error;
      }
      if (options.json) printJson({ url: server.url, auth: admin !== undefined || read !== undefined });
      else {
        console.log(`${colour.green('●')} Rewind on ${colour.bold(server.url)} (${store.backend})`);
        console.log(
          staticDir ? `  web debugger: ${server.url}/` : colour.dim('  no web debugger built (npm run build:web): the API alone'),
        );
        console.log(colour.dim(`  OpenAPI: ${server.url}/openapi.json · stop with Ctrl-C`));
      }
      const signal = await untilSignal('SIGINT', 'SIGTERM');
      if (!options.json) console.log(colour.dim(`${signal}: closing`));
      try {
        await server.close();
        await runtime.close();
        await projections.close();
      } finally {
        await store.close();
      }
    });
}

function untilSignal(...signals: NodeJS.Signals[]): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      for (const s of signals) process.off(s, handler);
      resolve(signal);
    };
    for (const s of signals) process.once(s, handler);
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535) throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  return n;
}

function parseBytes(value: string): number {
  const match = /^(\d+)(k|m)?i?b?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError('write a number of bytes, like 1048576, 512k or 4m');
  const unit = match[2]?.toLowerCase() === 'm' ? 1024 * 1024 : match[2]?.toLowerCase() === 'k' ? 1024 : 1;
  const n = Number(match[1]) * unit;
  if (n < 1) throw new InvalidArgumentError('the body limit must be at least 1 byte');
  return n;
}
