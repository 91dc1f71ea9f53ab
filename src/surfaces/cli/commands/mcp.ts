import type { Command } from 'commander';
import { ValidationError } from '../../../events/errors.js';
import { createRuntime } from '../../../runtime/index.js';
import { openStore } from '../../../store/open.js';
import { type GlobalOptions, storeUrl } from '../context.js';
import { loadWorkflows } from '../workflows.js';

interface McpOptions {
  run?: string;
  workflows?: string;
}

/** `rewind mcp`: an MCP server on stdin/stdout until the client closes it. */
export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('serve MCP tools over stdio: list checkpoints, history, state at a point, rollback')
    .option('--run <id>', 'expose only this run (the tools take no runId)')
    .option(
      '--workflows <module>',
      'module exporting the workflow definitions, whose compensations a rollback runs (default: the bundled examples)',
    )
    .addHelpText(
      'after',
      [
        '',
        'stdout carries the protocol: nothing else is printed there. Logs go to stderr.',
        '',
        'Example MCP client configuration:',
        '  { "command": "npx", "args": ["rewind", "mcp", "--db", "sqlite:./rewind.db", "--run", "my-run"] }',
      ].join('\n'),
    )
    .action(async (opts: McpOptions, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions>();
      // Loaded here, not at the top: the MCP SDK is an optional peer, and every other command must work without it.
      const { StdioServerTransport, createMcpServer } = await loadMcp();
      const workflows = await loadWorkflows(opts.workflows);
      const store = await openStore(storeUrl(options));
      const runtime = createRuntime({ store, workflows });
      const server = createMcpServer({ runtime, store, ...(opts.run ? { runId: opts.run } : {}) });
      const closed = new Promise<void>((resolve) => {
        server.server.onclose = resolve;
      });
      try {
        await server.connect(new StdioServerTransport());
        // The stdio transport does not notice the client going away on its own: the end of stdin is the end of the session.
        process.stdin.once('end', () => void server.close());
        await closed;
      } finally {
        await runtime.close();
        await store.close();
      }
    });
}

async function loadMcp() {
  try {
    const [{ StdioServerTransport }, { createMcpServer }] = await Promise.all([
      import('@modelcontextprotocol/sdk/server/stdio.js'),
      import('../../mcp/index.js'),
    ]);
    return { StdioServerTransport, createMcpServer };
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new ValidationError('rewind mcp needs @modelcontextprotocol/sdk', [], 'npm install @modelcontextprotocol/sdk');
  }
}
