// A tiny client for the Rewind HTTP API (same origin). The bearer token, when
// the server has one, is kept in sessionStorage: it leaves with the tab.
import type { EventEnvelope, ReactionStatus, RunInfo, RunStatus, RunSummary } from './model';

const TOKEN_KEY = 'rewind.token';

export function getToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setToken(token: string): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives as long as nothing asks for it again
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = getToken();
  return { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function call<T>(
  path: string,
  init: { method?: string; body?: unknown; signal?: AbortSignal } = {},
): Promise<T & { httpStatus: number }> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers: headers(init.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, 'NETWORK', 'the server does not answer', 'is `rewind serve` still running?');
  }
  const text = await response.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { error: { code: `HTTP_${response.status}`, message: text.slice(0, 200) } };
  }
  if (!response.ok) {
    const e = body?.error ?? {};
    throw new ApiError(response.status, String(e.code ?? `HTTP_${response.status}`), String(e.message ?? response.statusText), e.hint);
  }
  return Object.assign(body, { httpStatus: response.status });
}

const enc = encodeURIComponent;

export async function listRuns(filter: { status?: RunStatus | ''; workflow?: string } = {}): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  let after: string | undefined;
  // Pages of 1000 until the server says there is no more (bounded, in case it keeps saying so).
  for (let page = 0; page < 50; page++) {
    const q = new URLSearchParams({ limit: '1000' });
    if (filter.status) q.set('status', filter.status);
    if (filter.workflow) q.set('workflow', filter.workflow);
    if (after) q.set('after', after);
    const body = await call<{ runs: RunSummary[]; next?: string }>(`/runs?${q}`);
    out.push(...body.runs);
    if (!body.next) break;
    after = body.next;
  }
  return out;
}

/** One page of runs, newest first, filtered on the server (a page of its runs index, whatever the number of runs). */
export function runsPage(filter: {
  status?: RunStatus | '';
  workflow?: string;
  idPrefix?: string;
  after?: string;
  limit?: number;
}): Promise<{ runs: RunSummary[]; next?: string }> {
  // A search by id reads the index in id order from the prefix; otherwise the newest first.
  const q = new URLSearchParams({ order: filter.idPrefix ? 'id' : 'newest', limit: String(filter.limit ?? 200) });
  if (filter.idPrefix) q.set('idPrefix', filter.idPrefix);
  if (filter.status) q.set('status', filter.status);
  if (filter.workflow) q.set('workflow', filter.workflow);
  if (filter.after) q.set('after', filter.after);
  return call<{ runs: RunSummary[]; next?: string }>(`/runs?${q}`);
}

export interface RunCounts {
  total: number;
  byStatus: Partial<Record<RunStatus, number>>;
  byWorkflow: { workflow: string; status: RunStatus; runs: number }[];
}

export function runCounts(): Promise<RunCounts> {
  return call<RunCounts>('/run-counts');
}

export function getRun(runId: string): Promise<RunInfo> {
  return call<RunInfo>(`/runs/${enc(runId)}`);
}

/** A run's whole stream, rolled-back events included, from `from` on. */
export async function runEvents(runId: string, from = 1): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = [];
  let next: number | undefined = from;
  while (next !== undefined) {
    const body: { events: EventEnvelope[]; next?: number } = await call(`/runs/${enc(runId)}/events?from=${next}&limit=10000`);
    out.push(...body.events);
    next = body.next;
  }
  return out;
}

export type ActionResult = RunInfo & { httpStatus: number };

export function rollback(
  runId: string,
  body: { to: string | number; reason: string; after?: 'stop' | 'retry' | 'fail' },
): Promise<ActionResult> {
  return call<RunInfo>(`/runs/${enc(runId)}/rollback`, { method: 'POST', body });
}

export function retry(runId: string, note?: string): Promise<ActionResult> {
  return call<RunInfo>(`/runs/${enc(runId)}/retry`, { method: 'POST', body: note ? { note } : {} });
}

/** A reviewer's decision on what the run asks approval for (ctx.approve): a rejection goes through the run's policy. */
export function decide(runId: string, label: string, body: { approved: boolean; reason?: string; actor?: string }): Promise<ActionResult> {
  return call<RunInfo>(`/runs/${enc(runId)}/approvals/${enc(label)}`, { method: 'POST', body });
}

export function resume(runId: string): Promise<ActionResult> {
  return call<RunInfo>(`/runs/${enc(runId)}/resume`, { method: 'POST' });
}

/** POST /runs/{runId}/fork { at: { version } } — only when the server lists the route (see capabilities). */
export function fork(runId: string, at: number): Promise<ActionResult> {
  return call<RunInfo>(`/runs/${enc(runId)}/fork`, { method: 'POST', body: { at: { version: at } } });
}

/** GET /runs/{runId}/state?version=V — only when the server lists the route. */
export async function stateAt(runId: string, version: number): Promise<unknown> {
  const body = await call<{ state?: unknown }>(`/runs/${enc(runId)}/state?version=${version}`);
  return body.state;
}

/** Every reaction that has run against the log (GET /reactions), read from the log by the server. */
export async function listReactions(): Promise<ReactionStatus[]> {
  return (await call<{ reactions: ReactionStatus[] }>('/reactions')).reactions;
}

/** An operator's word on a parked reaction: go past its event ('skip') or try it again ('retry'); 409 when it is not parked. */
export function settleReaction(
  name: string,
  how: 'skip' | 'retry',
  body: { reason?: string; actor?: string },
): Promise<ReactionStatus & { httpStatus: number }> {
  return call<ReactionStatus>(`/reactions/${enc(name)}/${how}`, { method: 'POST', body });
}

export interface Capabilities {
  runs: boolean;
  stateAt: boolean;
  fork: boolean;
  retry: boolean;
  reactions: boolean;
}

/** What this server offers, from its OpenAPI document: routes the time-travel work may add later light up by themselves. */
export async function capabilities(): Promise<Capabilities> {
  const doc = await call<{ paths?: Record<string, Record<string, unknown>> }>('/openapi.json');
  const paths = doc.paths ?? {};
  const has = (path: string, method: string) => Boolean(paths[path]?.[method]);
  return {
    runs: has('/runs', 'get'),
    stateAt: has('/runs/{runId}/state', 'get'),
    fork: has('/runs/{runId}/fork', 'post'),
    retry: has('/runs/{runId}/retry', 'post'),
    reactions: has('/reactions', 'get'),
  };
}

/**
 * The live feed (GET /events/live, server-sent events) read with fetch rather
 * than EventSource, so that it can carry the bearer token. Reconnects with
 * Last-Event-ID, which the server resumes after with no gap and no repeat.
 */
export function follow(
  query: { streamPrefix?: string },
  onEvent: (event: EventEnvelope) => void,
  onState: (connected: boolean) => void,
): () => void {
  const stop = new AbortController();
  let lastId: string | undefined;
  const run = async () => {
    while (!stop.signal.aborted) {
      try {
        const q = new URLSearchParams();
        if (query.streamPrefix) q.set('streamPrefix', query.streamPrefix);
        const response = await fetch(`/events/live?${q}`, {
          headers: headers({ Accept: 'text/event-stream', ...(lastId ? { 'Last-Event-ID': lastId } : {}) }),
          signal: stop.signal,
        });
        if (!response.ok || !response.body) throw new Error(`live feed: HTTP ${response.status}`);
        onState(true);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut = buffer.indexOf('\n\n');
          while (cut >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let id: string | undefined;
            let type = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('id:')) id = line.slice(3).trim();
              else if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (id !== undefined) lastId = id;
            if (data.length > 0 && type === 'message') {
              try {
                const event = JSON.parse(data.join('\n')) as EventEnvelope;
                if (typeof event?.streamId === 'string') onEvent(event);
              } catch {
                // not an event (the server only sends events and comments)
              }
            }
            cut = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // falls through to the reconnect below
      }
      onState(false);
      if (stop.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  void run();
  return () => stop.abort();
}
