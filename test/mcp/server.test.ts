import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { createRuntime, defineWorkflow, RunEvents, type Runtime } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { createMcpServer, type McpServerOptions } from '../../src/surfaces/mcp/index.js';
import { makeStore } from '../runtime/helpers.js';
import { refusedMailer } from '../support/reactions.js';
import { tempDir } from '../support/temp.js';
import { trip, undone } from './fixtures/workflows.js';

async function connect(options: McpServerOptions): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await createMcpServer(options).connect(serverSide);
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await client.connect(clientSide);
  return client;
}

/** Calls a tool and parses its JSON answer; a tool error fails the test with its message. */
async function call<T = any>(client: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const result = await client.callTool({ name, arguments: args });
  const text = (result.content as Array<{ type: string; text: string }>)[0]?.text ?? '';
  if (result.isError) throw new Error(text);
  return JSON.parse(text) as T;
}

async function tripRun(runtime: Runtime, runId: string) {
  return runtime.start(trip, { city: 'Porto' }, { runId });
}

describe('MCP server beside the runs', () => {
  it('lists runs and checkpoints, shows history and state at a point, and rolls back with compensations', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [trip] });
    await tripRun(runtime, 'agent-1');
    const client = await connect({ runtime, store });

    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(tools).toEqual(['history', 'list_checkpoints', 'list_reactions', 'list_runs', 'rollback', 'signal_run', 'state_at']);
    const rollbackTool = (await client.listTools()).tools.find((t) => t.name === 'rollback');
    expect(rollbackTool?.inputSchema.required).toEqual(expect.arrayContaining(['runId', 'to', 'reason']));

    expect((await call(client, 'list_runs')).runs).toMatchObject([{ runId: 'agent-1', status: 'completed', workflow: 'mcp-trip' }]);
    await tripRun(runtime, 'agent-2');
    const first = await call(client, 'list_runs', { limit: 1 });
    expect(first).toMatchObject({ runs: [{ runId: 'agent-1' }], next: 'agent-1' });
    expect(await call(client, 'list_runs', { limit: 1, after: first.next })).toEqual({
      runs: [expect.objectContaining({ runId: 'agent-2' })],
    });
    const { checkpoints } = await call(client, 'list_checkpoints', { runId: 'agent-1' });
    expect(checkpoints).toMatchObject([{ label: 'hotel-booked', effective: true }]);

    const state = await call(client, 'state_at', { runId: 'agent-1', label: 'hotel-booked' });
    expect(state).toMatchObject({ state: { booked: ['hotel-Porto'] }, type: 'Checkpoint' });
    const now = await call(client, 'state_at', { runId: 'agent-1' });
    expect(now.state).toEqual({ booked: ['hotel-Porto', 'deposit-Porto'] });

    undone.length = 0;
    const rolled = await call(client, 'rollback', { runId: 'agent-1', to: 'hotel-booked', reason: 'the deposit was for the wrong dates' });
    expect(rolled).toMatchObject({
      runId: 'agent-1',
      status: 'rolled_back',
      rollbacks: [{ label: 'hotel-booked', reason: 'the deposit was for the wrong dates' }],
    });
    expect(undone).toEqual(['refund deposit-Porto']);

    const history = await call(client, 'history', { runId: 'agent-1', limit: 100 });
    expect(history.rollbacks).toMatchObject([
      { label: 'hotel-booked', reason: 'the deposit was for the wrong dates', trigger: { kind: 'requested' } },
    ]);
    expect(history.events.find((e: { name?: string; type: string }) => e.type === 'StepCompleted' && e.name === 'pay-deposit').status).toBe(
      'rolled_back',
    );
    expect(history.events.map((e: { type: string }) => e.type)).toContain(RunEvents.CompensationCompleted);
    expect(history.events[0]).not.toHaveProperty('data');
    const paged = await call(client, 'history', { runId: 'agent-1', fromVersion: 2, limit: 2, includeData: true });
    expect(paged.events.map((e: { version: number }) => e.version)).toEqual([2, 3]);
    expect(paged.events[0].data).toMatchObject({ name: 'book-hotel' });
    expect(paged.shown).toEqual({ from: 2, to: 3, of: history.shown.of });

    // The state after the rollback is the checkpoint's; the state at the old end is unchanged (time travel).
    expect((await call(client, 'state_at', { runId: 'agent-1' })).state).toEqual({ booked: ['hotel-Porto'] });
    await client.close();
    await store.close();
  });

  it('bad input is a tool error that says what was wrong, and nothing is written', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [trip] });
    await tripRun(runtime, 'agent-2');
    const client = await connect({ runtime, store });
    const before = await store.headPosition();

    const missing = await client.callTool({ name: 'rollback', arguments: { runId: 'agent-2', to: 'nowhere', reason: 'x' } });
    expect(missing.isError).toBe(true);
    expect((missing.content as Array<{ text: string }>)[0]?.text).toMatch(/nowhere/);
    const noReason = await client.callTool({ name: 'rollback', arguments: { runId: 'agent-2', to: 'latest' } });
    expect(noReason.isError).toBe(true);
    expect((noReason.content as Array<{ text: string }>)[0]?.text).toMatch(/reason/);
    const unknown = await client.callTool({ name: 'history', arguments: { runId: 'no-such-run' } });
    expect(unknown.isError).toBe(true);
    expect((unknown.content as Array<{ text: string }>)[0]?.text).toMatch(/no-such-run/);
    const two = await client.callTool({ name: 'state_at', arguments: { runId: 'agent-2', version: 2, label: 'hotel-booked' } });
    expect(two.isError).toBe(true);

    expect(await store.headPosition()).toBe(before);
    await client.close();
    await store.close();
  });

  it('lists the reactions of the log, read-only: one parked on an event shows that event and the error', async () => {
    const store = await makeStore();
    const runtime = createRuntime({
      store,
      reactions: [refusedMailer()],
    });
    const client = await connect({ runtime, store });
    const tool = (await client.listTools()).tools.find((t) => t.name === 'list_reactions');
    expect(tool?.annotations).toEqual({ readOnlyHint: true });
    const { events } = await store.append('mails', [{ type: 'Mail', data: { to: 'ada' } }]);
    const mail = events[0] as EventEnvelope;
    await expect.poll(async () => (await call(client, 'list_reactions')).reactions[0]?.state).toBe('parked');
    const before = await store.headPosition();
    expect(await call(client, 'list_reactions')).toEqual({
      reactions: [
        {
          name: 'mailer',
          state: 'parked',
          position: mail.position - 1,
          head: before,
          lagEvents: before - mail.position + 1,
          parked: {
            position: mail.position,
            eventId: mail.id,
            streamId: 'mails',
            type: 'Mail',
            error: { name: 'Error', message: 'the mail server said no' },
            attempts: 1,
            at: expect.any(String),
          },
          skipped: 0,
          heldBy: { owner: expect.any(String), until: expect.any(String) },
        },
      ],
    });
    expect(await store.headPosition()).toBe(before);
    await client.close();
    await runtime.close();
    await store.close();
  });

  it('scoped to one run, the tools take no runId and cannot reach another run', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, workflows: [trip] });
    await tripRun(runtime, 'mine');
    await tripRun(runtime, 'theirs');
    const client = await connect({ runtime, runId: 'mine' });
    const tools = (await client.listTools()).tools;
    expect(tools.map((t) => t.name).sort()).toEqual(['history', 'list_checkpoints', 'rollback', 'signal_run', 'state_at']);
    for (const tool of tools) expect(Object.keys(tool.inputSchema.properties ?? {})).not.toContain('runId');
    expect((await call(client, 'list_checkpoints', { runId: 'theirs' })).runId).toBe('mine');
    await client.close();
    await store.close();
  });
});

describe('MCP server inside the run', () => {
  it('the agent checkpoints, rolls itself back with a reason, compensations run, and its retry takes another path', async () => {
    const store = await makeStore();
    const cancelled: string[] = [];
    const seenReasons: Array<string | undefined> = [];
    let runtime: Runtime;
    const agent = defineWorkflow({
      name: 'mcp-agent',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        // A scripted agent standing in for a model's tool loop: same calls in the same order on every replay.
        const client = await connect({ runtime, ctx });
        try {
          seenReasons.push(ctx.lastRollback?.reason);
          const hotel = ctx.lastRollback ? 'hotel-b' : 'hotel-a';
          await ctx.step('search', () => ['hotel-a', 'hotel-b']);
          expect((await call(client, 'checkpoint', { label: 'searched' })).recorded).toBe(true);
          await ctx.step('book', () => hotel, { compensate: (r) => void cancelled.push(r) });
          const { checkpoints } = await call(client, 'list_checkpoints');
          expect(checkpoints.map((c: { label: string }) => c.label)).toEqual(['searched']);
          if (hotel === 'hotel-a') {
            const result = await client.callTool({ name: 'rollback', arguments: { to: 'searched', reason: 'hotel-a has no vacancy' } });
            expect(result.isError).toBe(true);
            await ctx.step('never', () => 'unreachable');
          }
          return hotel;
        } finally {
          await client.close();
        }
      },
    });
    runtime = createRuntime({ store, workflows: [agent] });
    const run = await runtime.start(agent, null, { runId: 'self' });
    expect(run.status).toBe('completed');
    expect(run.output).toBe('hotel-b');
    expect(cancelled).toEqual(['hotel-a']);
    expect(seenReasons.at(-1)).toBe('hotel-a has no vacancy');
    const history = await runtime.history('self');
    expect(history.rollbacks).toMatchObject([
      { label: 'searched', reason: 'hotel-a has no vacancy', trigger: { kind: 'step-failed', step: 'mcp:rollback' } },
    ]);
    expect(history.events.filter((e) => e.type === RunEvents.StepStarted && (e.data as { name: string }).name === 'never')).toHaveLength(0);

    // Resumed elsewhere (a fork of the whole run), every tool call replays from the journal.
    const fork = await runtime.fork('self', { runId: 'self-copy' });
    expect(fork.output).toBe('hotel-b');
    expect(cancelled).toEqual(['hotel-a']);
    await store.close();
  });
});

describe('rewind mcp over stdio', () => {
  it('serves the tools to the SDK client in a child process', async () => {
    const db = join(tempDir('rewind-mcp-'), 'runs.db');
    const store = await openStore(`sqlite:${db}`);
    await tripRun(createRuntime({ store, workflows: [trip] }), 'stdio-run');
    await store.close();

    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'test/mcp/fixtures/cli.ts', 'mcp', '--db', `sqlite:${db}`, '--workflows', 'test/mcp/fixtures/workflows.ts'],
      cwd: process.cwd(),
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk) => (stderr += String(chunk)));
    const client = new Client({ name: 'stdio-agent', version: '1.0.0' });
    await client.connect(transport);
    try {
      expect((await call(client, 'list_checkpoints', { runId: 'stdio-run' })).checkpoints).toMatchObject([{ label: 'hotel-booked' }]);
      const rolled = await call(client, 'rollback', { runId: 'stdio-run', to: 'hotel-booked', reason: 'wrong deposit' });
      expect(rolled.status).toBe('rolled_back');
    } finally {
      await client.close();
    }
    expect(stderr).toBe('');

    const after = await openStore(`sqlite:${db}`);
    const types = (await after.read('run-stdio-run')).map((e) => e.type);
    expect(types.slice(-4)).toEqual([
      RunEvents.RollbackRequested,
      RunEvents.CompensationStarted,
      RunEvents.CompensationCompleted,
      RunEvents.RolledBack,
    ]);
    await after.close();
  }, 60_000);
});
