import { mkdtemp, rm } from 'node:fs/promises';
import { type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnyProjection, openProjections, type Projections } from '../../src/projections/index.js';
import type { Runtime } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { type RunningServer, type ServerOptions, startServer } from '../../src/surfaces/http/server.js';

export const ADMIN = 'admin-token-0123456789abcdef';
export const READER = 'read-token-0123456789abcdef';

export interface Backend {
  name: string;
  open(): Promise<{ store: EventStore; cleanup(): Promise<void> }>;
}

export const memoryBackend: Backend = {
  name: 'memory',
  async open() {
    const store = await openStore('memory:');
    return { store, cleanup: () => store.close() };
  },
};

export const sqliteBackend: Backend = {
  name: 'sqlite file',
  async open() {
    const dir = await mkdtemp(join(tmpdir(), 'rewind-http-'));
    const store = await openStore(`sqlite:${join(dir, 'rewind.db')}`);
    return {
      store,
      async cleanup() {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
};

/** PostgreSQL, unless REWIND_SKIP_POSTGRES=1 left its server out of this run. */
export const postgresBackend: Backend | undefined =
  process.env.REWIND_SKIP_POSTGRES === '1'
    ? undefined
    : {
        name: 'postgres',
        async open() {
          const { openTestPostgresStore } = await import('../support/postgres.js');
          const store = await openTestPostgresStore();
          return { store, cleanup: () => store.close() };
        },
      };

export const backends: Backend[] = [memoryBackend, sqliteBackend, ...(postgresBackend ? [postgresBackend] : [])];

export interface Harness {
  store: EventStore;
  runtime: Runtime | undefined;
  projections: Projections | undefined;
  server: RunningServer;
  url: string;
  /** fetch relative to the server, with an optional bearer token. */
  call(path: string, init?: RequestInit & { token?: string; json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export interface HarnessOptions extends Omit<ServerOptions, 'store' | 'runtime' | 'projections'> {
  /** Serve the /runs routes with this runtime over the harness's store (none: only the log routes). */
  runtime?: (store: EventStore) => Runtime;
  /** Serve GET /projections over these definitions (registered, so their models exist). */
  projections?: readonly AnyProjection[];
}

/** A real server on 127.0.0.1 with an ephemeral port, over a real store. */
export async function startHarness(backend: Backend = memoryBackend, options: HarnessOptions = {}): Promise<Harness> {
  const { store, cleanup } = await backend.open();
  const { runtime: makeRuntime, projections: definitions, ...serverOptions } = options;
  const runtime = makeRuntime?.(store);
  const projections = definitions ? await openProjections(store, definitions) : undefined;
  const server = await startServer({ store, runtime, projections, port: 0, log: () => {}, ...serverOptions });
  return {
    runtime,
    projections,
    store,
    server,
    url: server.url,
    call(path, init = {}) {
      const { token, json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(`${server.url}${path}`, {
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json), method: rest.method ?? 'POST' } : {}),
      });
    },
    async close() {
      await server.close();
      await runtime?.close();
      await projections?.close();
      await cleanup();
    },
  };
}

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** Reads server-sent events from a fetch response, as an EventSource would parse them. */
export async function* sseMessages(response: Response): AsyncGenerator<SseMessage> {
  let buffer = '';
  for await (const chunk of textChunks(response)) {
    buffer += chunk;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message: SseMessage = { data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(val);
        else if (field === 'id') message.id = val;
        else if (field === 'event') message.event = val;
      }
      if (data.length > 0) yield { ...message, data: data.join('\n') };
      end = buffer.indexOf('\n\n');
    }
  }
}

export async function* textChunks(response: Response): AsyncGenerator<string> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    yield decoder.decode(value, { stream: true });
  }
}

export async function take<T>(iterator: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const { value, done } = await iterator.next();
    if (done) break;
    out.push(value);
  }
  return out;
}

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or its text when it is not JSON. */
  body: any;
}

/**
 * One request with exactly the headers given (fetch adds its own, such as
 * Sec-Fetch-Mode, and will not send a Host of our choosing; node:http does
 * what it is told), as a browser or curl would send it.
 */
export function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: `${url.pathname}${url.search}`, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: the text it is
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
