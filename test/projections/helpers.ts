import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { type Doc, defineProjection, type ProjectionDefinition } from '../../src/projections/definition.js';
import { effectiveHistory } from '../../src/projections/effective-history.js';
import { Store } from '../../src/store/event-store.js';
import { MemoryBackend } from '../../src/store/memory.js';
import { SqliteBackend } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl, openTestPostgresStore, uniqueSchema } from '../support/postgres.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));

export type Kind = 'memory' | 'sqlite' | 'postgres';
/** PostgreSQL too, unless REWIND_SKIP_POSTGRES=1 leaves its server out of the run. */
export const kinds: Kind[] = process.env.REWIND_SKIP_POSTGRES === '1' ? ['memory', 'sqlite'] : ['memory', 'sqlite', 'postgres'];

const dirs: string[] = [];
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-projections-'));
  dirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export async function openTestStore(kind: Kind, file?: string): Promise<EventStore> {
  if (kind === 'memory') return new Store(new MemoryBackend());
  if (kind === 'postgres') return openTestPostgresStore();
  return new Store(SqliteBackend.open(file ?? join(tempDir(), 'rewind.db')));
}

/** A store, and the URL another process opens the same log with (none for memory: one process only). */
export async function openSharedStore(kind: Kind): Promise<{ store: EventStore; url: string | undefined }> {
  if (kind === 'memory') return { store: await openTestStore('memory'), url: undefined };
  if (kind === 'sqlite') {
    const file = join(tempDir(), 'rewind.db');
    return { store: await openTestStore('sqlite', file), url: `sqlite:${file}` };
  }
  const url = new URL(databaseUrl());
  url.searchParams.set('schema', uniqueSchema());
  const { openStore } = await import('../../src/store/open.js');
  return { store: await openStore(url.toString()), url: url.toString() };
}

const children = new Set<ChildProcess>();
/** Kills (SIGKILL) every fixture process still running: for afterEach. */
export function killChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

export interface Fixture {
  child: ChildProcess;
  /** Resolves once the process prints "ready" (or exits). */
  ready: Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
}

/** A TypeScript fixture of test/fixtures in a process of its own, stdin open. */
export function runFixture(name: string, args: string[]): Fixture {
  const script = join(root, 'test/fixtures', name);
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.includes('ready')) onReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('close', (code, signal) => {
      onReady();
      resolve({ code, signal, out, err });
    });
  });
  return { child, ready, done };
}

/** test/fixtures/projections-appender.ts: `done` resolves with its output once it exits, and rejects if it failed. */
export function appenderProcess(args: string[]): { ready: Promise<void>; stop: () => void; done: Promise<string> } {
  const { child, ready, done } = runFixture('projections-appender.ts', args);
  return {
    ready,
    stop: () => child.stdin?.write('stop\n'),
    done: done.then(({ code, out, err }) => {
      if (code !== 0) throw new Error(`the appender exited with ${code}: ${err}`);
      return out.trim();
    }),
  };
}

export interface ItemDoc extends Doc {
  stream: string;
  item: string;
  total: number;
  adds: number;
  notes: string[];
}

/**
 * Items per stream: Added { item, n } adds to one, Removed { item } deletes it,
 * Noted { item, text } appends a note. One document per (stream, item).
 */
export function itemsProjection(
  name: string,
  mode: 'inline' | 'async',
  version = 1,
  overrides: Partial<ProjectionDefinition<ItemDoc>> = {},
) {
  return defineProjection<ItemDoc>({
    name,
    version,
    mode,
    types: ['Added', 'Removed', 'Noted'],
    key: (e) => `${e.streamId}/${(e.data as { item: string }).item}`,
    evolve: (doc, e) => evolveItem(doc, e),
    ...overrides,
  });
}

export function evolveItem(doc: ItemDoc | undefined, e: EventEnvelope): ItemDoc | undefined {
  const d = e.data as { item: string; n?: number; text?: string };
  if (e.type === 'Removed') return undefined;
  const base = doc ?? { stream: e.streamId, item: d.item, total: 0, adds: 0, notes: [] };
  if (e.type === 'Added') return { ...base, total: base.total + (d.n ?? 0), adds: base.adds + 1 };
  return { ...base, notes: [...base.notes, d.text ?? ''] };
}

/** The model computed straight from the log, with no projection machinery: what every path must equal. */
export function expectedItems(events: EventEnvelope[]): { key: string; streamId: string; doc: ItemDoc }[] {
  const byStream = new Map<string, EventEnvelope[]>();
  for (const e of events) byStream.set(e.streamId, [...(byStream.get(e.streamId) ?? []), e]);
  const docs = new Map<string, { key: string; streamId: string; doc: ItemDoc }>();
  for (const [streamId, list] of byStream) {
    for (const e of effectiveHistory(list, { keepMarkers: true })) {
      if (!['Added', 'Removed', 'Noted'].includes(e.type)) continue;
      const key = `${streamId}/${(e.data as { item: string }).item}`;
      const next = evolveItem(docs.get(key)?.doc, e);
      if (next) docs.set(key, { key, streamId, doc: next });
      else docs.delete(key);
    }
  }
  return [...docs.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
}
