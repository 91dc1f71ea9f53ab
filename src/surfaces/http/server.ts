import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { type AppOptions, createApp, type RewindApp } from './app.js';
import { isLoopbackAddress } from './auth.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';
import { HttpConfigError } from './errors.js';

export { DEFAULT_HOST, DEFAULT_PORT };

export interface ServerOptions extends Omit<AppOptions, 'signal'> {
  /** Default 127.0.0.1. Anything that is not loopback needs tokens. */
  host?: string;
  /** Default 4600; 0 picks a free port. */
  port?: number;
  /** How long close() lets running requests finish before cutting them off (default 5 s). */
  closeGraceMs?: number;
}

export interface RunningServer extends RewindApp {
  url: string;
  host: string;
  port: number;
  /** Ends live feeds, stops accepting connections and waits for the open requests. The store stays open: it is the caller's. */
  close(): Promise<void>;
}

/** Listens, or throws HttpConfigError before binding anything when the configuration would be unsafe. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new HttpConfigError('port', `port must be 0-65535, got ${port}`);
  if (!isLoopbackAddress(host) && !hasTokens(options)) {
    throw new HttpConfigError(
      'exposed',
      `refusing to listen on ${host} without tokens: anyone who can reach it could read and rewrite the log`,
      "give tokens: { admin } (and read for read-only clients), or listen on host '127.0.0.1'",
    );
  }

  const shutdown = new AbortController();
  const rewind = createApp({ ...options, signal: shutdown.signal });
  const server = createAdaptorServer({ fetch: rewind.app.fetch, hostname: host }) as Server;
  const requests = trackRequests(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    ...rewind,
    url: `http://${shown}:${address.port}`,
    host: address.address,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        shutdown.abort();
        // Open sockets hold close() until the client lets go, even ones that
        // never carried a request (clients open spares). Once no request is
        // running none of them has anything left to say; requests still running
        // after the grace period are cut off.
        const deadline = setTimeout(() => server.closeAllConnections(), options.closeGraceMs ?? 5000);
        server.close((error) => {
          clearTimeout(deadline);
          if (error) reject(error);
          else resolve();
        });
        requests.whenIdle(() => server.closeAllConnections());
      });
      return closing;
    },
  };
}

function hasTokens(options: ServerOptions): boolean {
  const count = (v: string | string[] | undefined) => (v === undefined ? 0 : Array.isArray(v) ? v.length : 1);
  return count(options.tokens?.admin) + count(options.tokens?.read) > 0;
}

function trackRequests(server: Server): { whenIdle(callback: () => void): void } {
  let running = 0;
  let waiting: (() => void) | undefined;
  server.on('request', (_request, response: ServerResponse) => {
    running++;
    response.once('close', () => {
      running--;
      if (running === 0) waiting?.();
    });
  });
  return {
    whenIdle(callback) {
      if (running === 0) callback();
      else waiting = callback;
    },
  };
}
