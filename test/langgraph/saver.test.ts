import { AIMessage, type BaseMessage, HumanMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import { Annotation, Command, END, MemorySaver, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph';
import { type BaseCheckpointSaver, type Checkpoint, emptyCheckpoint, INTERRUPT } from '@langchain/langgraph-checkpoint';
import { afterAll, describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../../src/events/errors.js';
import type { EventStore } from '../../src/store/types.js';
import type { CheckpointData } from '../../src/surfaces/langgraph/events.js';
import { CheckpointConflictError, LangGraphEvents, RewindCheckpointSaver } from '../../src/surfaces/langgraph/index.js';
import { counterGraph } from './graph.js';
import { type Backend, memoryBackend, postgresBackend, sqliteBackend, withPostgres } from './helpers.js';

const backends: [string, () => Backend | Promise<Backend>][] = [
  ['memory', memoryBackend],
  ['sqlite', sqliteBackend],
];
if (withPostgres) backends.push(['postgres', postgresBackend]);

const thread = (id: string, ns = '') => ({ configurable: { thread_id: id, checkpoint_ns: ns } });

let made = 0;
/** Ids that sort in the order they are made (uuid6 ids made in one millisecond may not). */
const nextId = () => `cp-${String(++made).padStart(6, '0')}`;

/** A checkpoint like the loop makes: `step` in the values, versions bumped. */
function checkpointAt(step: number, id = nextId()): Checkpoint {
  return { ...emptyCheckpoint(), id, channel_values: { step }, channel_versions: { step } };
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe.each(backends)('RewindCheckpointSaver on %s', (_name, makeBackend) => {
  let backend: Backend | undefined;
  const opened: EventStore[] = [];
  async function store(): Promise<EventStore> {
    backend ??= await makeBackend();
    const s = await backend.open();
    opened.push(s);
    return s;
  }
  async function reopen(s: EventStore): Promise<EventStore> {
    const again = await (backend as Backend).reopen(s);
    if (again !== s) opened.push(again);
    return again;
  }
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await backend?.cleanup();
  });

  /** Puts a linear chain of `n` checkpoints; returns their ids, oldest first. */
  async function chain(saver: RewindCheckpointSaver, threadId: string, n: number, ns = '', from?: string): Promise<string[]> {
    const ids: string[] = [];
    let config: RunnableConfig = { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: from } };
    for (let i = 0; i < n; i++) {
      config = await saver.put(config, checkpointAt(i + 1), { source: 'loop', step: i, parents: {} }, { step: i + 1 });
      ids.push(config.configurable?.checkpoint_id as string);
    }
    return ids;
  }

  it('runs a real graph exactly like MemorySaver, with a hash-chained, verifiable history', async () => {
    const s = await store();
    const saver = new RewindCheckpointSaver(s);
    const ours = counterGraph(saver, { ask: true });
    const theirs = counterGraph(new MemorySaver(), { ask: true });
    const config = { configurable: { thread_id: 'g1' } };
    for (const graph of [ours, theirs]) {
      await graph.invoke({ log: ['start'], until: 6 }, config);
      await graph.invoke(new Command({ resume: 'yes' }), config);
    }
    const a = await all(ours.getStateHistory(config));
    const b = await all(theirs.getStateHistory(config));
    expect(a.map((x) => x.values)).toEqual(b.map((x) => x.values));
    expect(a[0]?.values.log).toEqual(['start', 'inc 1', 'inc 2', 'inc 3', 'inc 4', 'inc 5', 'inc 6', 'answer yes']);
    expect((await s.verify()).ok).toBe(true);

    // A growing list is stored as appended tails, not whole at every step.
    const events = await s.read('langgraph:g1:');
    const logBlobs = events
      .filter((e) => e.type === LangGraphEvents.Checkpoint)
      .map((e) => (e.data as { values: Record<string, object> }).values.log)
      .filter(Boolean);
    expect(logBlobs.some((blob) => 'tail' in (blob as object))).toBe(true);

    // A second saver on the same store rebuilds everything from the log alone.
    const fresh = counterGraph(new RewindCheckpointSaver(await reopen(s)));
    expect((await all(fresh.getStateHistory(config))).map((x) => x.values)).toEqual(b.map((x) => x.values));
  });

  it('stores LangChain messages as appended tails and loads them back as messages', async () => {
    const saver = new RewindCheckpointSaver(await store());
    const build = (checkpointer: BaseCheckpointSaver) =>
      new StateGraph(MessagesAnnotation)
        .addNode('bot', (st) => ({ messages: [new AIMessage(`reply ${st.messages.length}`)] }))
        .addEdge(START, 'bot')
        .addConditionalEdges('bot', (st) => (st.messages.length < 8 ? 'bot' : END))
        .compile({ checkpointer });
    const config = { configurable: { thread_id: 'msgs' } };
    const ours = await build(saver).invoke({ messages: [new HumanMessage('hi')] }, config);
    const theirs = await build(new MemorySaver()).invoke({ messages: [new HumanMessage('hi')] }, config);
    expect(ours.messages.map((m: BaseMessage) => [m.constructor.name, m.content])).toEqual(
      theirs.messages.map((m: BaseMessage) => [m.constructor.name, m.content]),
    );
    const latest = await saver.getTuple(config);
    const messages = latest?.checkpoint.channel_values.messages as BaseMessage[] | undefined;
    expect(messages?.at(-1)).toBeInstanceOf(AIMessage);
    const blobs = (await saver.store.read('langgraph:msgs:'))
      .filter((e) => e.type === LangGraphEvents.Checkpoint)
      .map((e) => (e.data as { values: Record<string, object> }).values.messages)
      .filter(Boolean);
    // Each reply is stored as a tail on the list before it, until the tails would outweigh the list: then it is stored whole.
    const whole = ['j', 'v'];
    const tail = ['base', 'tail', 'v'];
    expect(blobs.map((b) => Object.keys(b as object).sort())).toEqual([whole, tail, whole, tail, tail, tail, whole, tail]);
  });

  it('time travels: invoking from an older checkpoint forks on purpose, without a conflict', async () => {
    const saver = new RewindCheckpointSaver(await store());
    const graph = counterGraph(saver);
    const config = { configurable: { thread_id: 'tt' } };
    await graph.invoke({ log: ['start'], until: 3 }, config);
    const history = await all(graph.getStateHistory(config));
    const past = history.find((h) => h.values.count === 1);
    expect(past?.values).toEqual({ log: ['start', 'inc 1'], count: 1, until: 3 });
    const result = await graph.invoke({ until: 5 }, past?.config);
    expect(result.count).toBe(5);
    expect((await graph.getState(config)).values.count).toBe(5);
  });

  it('time travel leaves the original branch whole, though the fork counts the same channel versions again', async () => {
    const s = await store();
    const graphs = [counterGraph(new RewindCheckpointSaver(s)), counterGraph(new MemorySaver())];
    const seen: unknown[][] = [];
    for (const graph of graphs) {
      const config = { configurable: { thread_id: 'branches' } };
      await graph.invoke({ log: ['start'], until: 3 }, config);
      const original = await all(graph.getStateHistory(config));
      const past = original.find((h) => h.values.count === 1);
      // The fork from count 1 writes versions the original branch already used for count 2 and 3.
      await graph.invoke({ log: ['fork'], until: 2 }, past?.config);
      const again = [];
      for (const h of original) again.push((await graph.getState(h.config)).values);
      expect(again).toEqual(original.map((h) => h.values));
      seen.push([again, (await all(graph.getStateHistory(config))).map((h) => h.values)]);
    }
    expect(seen[0]).toEqual(seen[1]);
    // A saver that rebuilds the thread from the log alone tells the branches apart too.
    const fresh = counterGraph(new RewindCheckpointSaver(await reopen(s)));
    expect((await all(fresh.getStateHistory({ configurable: { thread_id: 'branches' } }))).map((h) => h.values)).toEqual(seen[1]?.[1]);
  });

  it('stores what was put at the call, even when the caller changes its objects before the append', async () => {
    const saver = new RewindCheckpointSaver(await store());
    const items = [{ n: 1 }];
    const put = (id: string, version: number, parent?: string) =>
      saver.put(
        { configurable: { thread_id: 'capture', checkpoint_ns: '', checkpoint_id: parent } },
        { ...emptyCheckpoint(), id, channel_values: { items }, channel_versions: { items: version } },
        { source: 'loop', step: version, parents: {} },
        { items: version },
      );
    const first = put('cp-capture-1', 1);
    // A reducer that grows its list in place, running while the put is still on its way to the log.
    items.push({ n: 2 });
    await first;
    const second = put('cp-capture-2', 2, 'cp-capture-1');
    items.push({ n: 3 });
    (items[0] as { n: number }).n = 99;
    const writes = saver.putWrites({ configurable: { thread_id: 'capture', checkpoint_id: 'cp-capture-1' } }, [['items', items]], 'task');
    items.length = 0;
    await Promise.all([second, writes]);
    const read = async (id: string) =>
      (await saver.getTuple({ configurable: { thread_id: 'capture', checkpoint_id: id } }))?.checkpoint.channel_values.items;
    expect(await read('cp-capture-1')).toEqual([{ n: 1 }]);
    expect(await read('cp-capture-2')).toEqual([{ n: 1 }, { n: 2 }]);
    const tuple = await saver.getTuple({ configurable: { thread_id: 'capture', checkpoint_id: 'cp-capture-1' } });
    expect(tuple?.pendingWrites).toEqual([['task', 'items', [{ n: 99 }, { n: 2 }, { n: 3 }]]]);
  });

  it('stores an edited list whole, and a new saver on the thread goes on storing tails', async () => {
    const s = await store();
    const saver = new RewindCheckpointSaver(s);
    const versions: unknown[][] = [[{ m: 'a' }], [{ m: 'a' }, { m: 'b' }], [{ m: 'A' }, { m: 'b' }, { m: 'c' }]];
    let config: RunnableConfig = thread('edits');
    for (const [i, list] of versions.entries()) {
      const checkpoint = { ...emptyCheckpoint(), id: `cp-edit-${i}`, channel_values: { list }, channel_versions: { list: i + 1 } };
      config = await saver.put(config, checkpoint, { source: 'loop', step: i, parents: {} }, { list: i + 1 });
    }
    const other = new RewindCheckpointSaver(await reopen(s));
    await other.getTuple(thread('edits'));
    const longer = [...(versions[2] as unknown[]), { m: 'd' }];
    const checkpoint = { ...emptyCheckpoint(), id: 'cp-edit-3', channel_values: { list: longer }, channel_versions: { list: 4 } };
    await other.put(config, checkpoint, { source: 'loop', step: 3, parents: {} }, { list: 4 });

    const blobs = (await s.read('langgraph:edits:')).map((e) => (e.data as CheckpointData).values.list);
    expect(blobs.map((b) => (b && 'tail' in b ? 'tail' : 'full'))).toEqual(['full', 'tail', 'full', 'tail']);
    for (const [i, list] of [...versions, longer].entries()) {
      const tuple = await new RewindCheckpointSaver(s).getTuple({ configurable: { thread_id: 'edits', checkpoint_id: `cp-edit-${i}` } });
      expect(tuple?.checkpoint.channel_values.list).toEqual(list);
    }
  });

  /** The store, counting the events its reads return. */
  function counting(s: EventStore): { store: EventStore; read: () => number } {
    let read = 0;
    const store = new Proxy(s, {
      get(target, property) {
        if (property === 'read')
          return async (...args: Parameters<EventStore['read']>) => {
            const events = await target.read(...args);
            read += events.length;
            return events;
          };
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { store, read: () => read };
  }

  it('a saver opening a long thread reads its snapshot and the events after it, not the whole stream', async () => {
    const s = await store();
    const warm = new RewindCheckpointSaver(s);
    const config = { configurable: { thread_id: 'long' }, recursionLimit: 500 };
    await counterGraph(warm).invoke({ log: ['start'], until: 100 }, config);
    // 102 checkpoints (the input's, then one per step) and 101 sets of writes.
    expect(await s.streamVersion('langgraph:long:')).toBe(203);

    const { store: watched, read } = counting(s);
    const cold = new RewindCheckpointSaver(watched);
    expect(await cold.getTuple(config)).toEqual(await warm.getTuple(config));
    // Exactly the events after the newest snapshot.
    const opened = await s.loadSnapshot('langgraph:long:', 'langgraph-index/1');
    expect(read()).toBe(203 - (opened?.version ?? 0));
    expect(read()).toBeLessThan(64);
    // Older checkpoints need the history, which it then reads whole.
    expect(await all(cold.list(config))).toEqual(await all(warm.list(config)));

    // A graph resumed by a saver that opened the thread from a snapshot goes on storing the list as tails.
    const resumed = new RewindCheckpointSaver(s);
    const result = await counterGraph(resumed).invoke({ until: 103 }, config);
    expect(result.log).toEqual(['start', ...Array.from({ length: 103 }, (_, i) => `inc ${i + 1}`)]);
    const last = (await s.read('langgraph:long:', { direction: 'backward', limit: 6 })).filter(
      (e) => e.type === LangGraphEvents.Checkpoint,
    );
    expect(last.some((e) => 'tail' in ((e.data as CheckpointData).values.log ?? {}))).toBe(true);
    // One snapshot per stream: each new one replaces the one before.
    const snapshot = await s.loadSnapshot('langgraph:long:', 'langgraph-index/1');
    // A snapshot every 64 events: the newest is less than that behind the head.
    expect((await s.streamVersion('langgraph:long:')) - (snapshot?.version ?? 0)).toBeLessThan(64);
    expect(await s.loadSnapshot('langgraph:long:', 'langgraph-index/1', { atOrBefore: (snapshot?.version ?? 1) - 1 })).toBeUndefined();
  });

  it('after a snapshot, a rollback, a fork from before it, or writes to an older checkpoint send a new saver to the history', async () => {
    const s = await store();
    const warm = new RewindCheckpointSaver(s);
    const graph = counterGraph(warm);
    const config = { configurable: { thread_id: 'behind' }, recursionLimit: 500 };
    await graph.invoke({ log: ['start'], until: 80 }, config);
    const byCount = new Map((await all(graph.getStateHistory(config))).map((h) => [h.values.count as number, h.config]));
    const idAt = (count: number) => byCount.get(count)?.configurable?.checkpoint_id as string;

    await warm.rollback('behind', idAt(70), 'steps 71-80 were wrong');
    expect((await new RewindCheckpointSaver(s).getTuple(config))?.checkpoint.id).toBe(idAt(70));

    await graph.invoke({ log: ['fork'], until: 12 }, byCount.get(10));
    const head = await warm.getTuple(config);
    expect(head?.checkpoint.channel_values.log).toEqual([
      'start',
      ...Array.from({ length: 10 }, (_, i) => `inc ${i + 1}`),
      'fork',
      'inc 11',
      'inc 12',
    ]);
    expect(await new RewindCheckpointSaver(s).getTuple(config)).toEqual(head);

    const older = { configurable: { thread_id: 'behind', checkpoint_ns: '', checkpoint_id: idAt(40) } };
    const before = (await warm.getTuple(older))?.pendingWrites ?? [];
    for (let i = 0; i < 2; i++) await new RewindCheckpointSaver(s).putWrites(older, [['log', 'late']], 'task-late');
    const after = (await new RewindCheckpointSaver(s).getTuple(older))?.pendingWrites;
    expect(after).toHaveLength(before.length + 1);
    expect(after).toEqual(expect.arrayContaining([...before, ['task-late', 'log', 'late']]));
  });

  it('keeps pending writes sorted by task, special writes replacing and regular ones kept', async () => {
    const saver = new RewindCheckpointSaver(await store());
    const config = await saver.put(thread('w'), checkpointAt(1), { source: 'loop', step: 0, parents: {} }, { step: 1 });
    await saver.putWrites(
      config,
      [
        ['b', 1],
        ['a', 2],
      ],
      'task-b',
    );
    await saver.putWrites(config, [['a', 3]], 'task-a');
    await saver.putWrites(config, [['b', 99]], 'task-b'); // regular idx 0 already stored: kept
    await saver.putWrites(config, [[INTERRUPT, 'first']], 'task-a');
    await saver.putWrites(config, [[INTERRUPT, 'second']], 'task-a'); // special: replaces
    const tuple = await saver.getTuple(config);
    expect(tuple?.pendingWrites).toEqual([
      ['task-a', INTERRUPT, 'second'],
      ['task-a', 'a', 3],
      ['task-b', 'b', 1],
      ['task-b', 'a', 2],
    ]);
  });

  it('prunes to the last N, re-linking the kept chain and keeping pending interrupts', async () => {
    const saver = new RewindCheckpointSaver(await store());
    const early = await chain(saver, 'p', 3);
    // An interrupt left pending on a side branch from the 2nd checkpoint: old, but it must stay.
    const side = await saver.put(
      { configurable: { thread_id: 'p', checkpoint_ns: '', checkpoint_id: early[1] } },
      checkpointAt(9),
      { source: 'loop', step: 9, parents: {} },
      { step: 9 },
    );
    await saver.putWrites(side, [[INTERRUPT, { value: 'approve?' }]], 'ask');
    const sideId = side.configurable?.checkpoint_id as string;
    // An interrupt that was resumed (its checkpoint has a child) does not hold anything back.
    await saver.putWrites(
      { configurable: { thread_id: 'p', checkpoint_ns: '', checkpoint_id: early[0] } },
      [[INTERRUPT, 'resumed']],
      'ask',
    );
    const late = await chain(saver, 'p', 3, '', early[2]);

    const result = await saver.prune('p', { keepLast: 2 });
    const kept = (await all(saver.list(thread('p')))).map((t) => t.checkpoint.id);
    expect(kept.sort()).toEqual([sideId, late[1], late[2]].sort());
    expect(result.pruned.sort()).toEqual([...early, late[0]].sort());
    for (const id of result.pruned) expect(await saver.getTuple({ configurable: { thread_id: 'p', checkpoint_id: id } })).toBeUndefined();

    // Every kept checkpoint's parent is kept too (or it has none): the chain is re-linked over the gap.
    const byId = new Map((await all(saver.list(thread('p')))).map((t) => [t.checkpoint.id, t]));
    expect(byId.get(late[2] as string)?.parentConfig?.configurable?.checkpoint_id).toBe(late[1]);
    expect(byId.get(late[1] as string)?.parentConfig).toBeUndefined();
    expect(byId.get(sideId)?.parentConfig).toBeUndefined();
    expect(byId.get(sideId)?.pendingWrites).toEqual([['ask', INTERRUPT, { value: 'approve?' }]]);
    // Values survive: they are stored per channel version, not in the hidden checkpoints.
    expect(byId.get(late[2] as string)?.checkpoint.channel_values).toEqual({ step: 3 });
    // Recorded as an event; nothing removed from the log.
    const events = await saver.store.read('langgraph:p:');
    expect(events.filter((e) => e.type === LangGraphEvents.Pruned)).toHaveLength(1);
    expect(events.filter((e) => e.type === LangGraphEvents.Checkpoint)).toHaveLength(7);
    // Pruning again finds nothing more to hide and records nothing.
    expect((await saver.prune('p', { keepLast: 2 })).pruned).toEqual([]);
    expect(await saver.store.streamVersion('langgraph:p:')).toBe(events.length);
  });

  it('prunes by age and always keeps the latest checkpoint', async () => {
    const saver = new RewindCheckpointSaver(await store());
    await chain(saver, 'age', 4);
    const { pruned, kept } = await saver.prune('age', { newerThan: new Date(Date.now() + 60_000) });
    expect(pruned).toHaveLength(3);
    expect(kept).toBe(1);
    const [only] = await all(saver.list(thread('age')));
    expect(only?.parentConfig).toBeUndefined();
    expect(only?.checkpoint.channel_values).toEqual({ step: 4 });
  });

  it('rolls a thread back: the target is the latest again, history stays marked', async () => {
    const saver = new RewindCheckpointSaver(await store());
    const graph = counterGraph(saver);
    const config = { configurable: { thread_id: 'rb' } };
    await graph.invoke({ log: ['start'], until: 4 }, config);
    const before = await all(graph.getStateHistory(config));
    const target = before.find((h) => h.values.count === 2);
    const targetId = target?.config.configurable?.checkpoint_id as string;

    const { rolledBack } = await saver.rollback('rb', targetId, 'inc 3 was wrong');
    // The checkpoints after the target, newest first: counts 4 and 3.
    const after2 = before.filter((h) => h.values.count > 2);
    expect(after2.map((h) => h.values.count)).toEqual([4, 3]);
    expect(rolledBack).toEqual(after2.map((h) => h.config.configurable?.checkpoint_id));
    const state = await graph.getState(config);
    expect(state.values.count).toBe(2);
    expect(state.next).toEqual(['inc']);
    expect((await all(saver.list(thread('rb')))).every((t) => t.checkpoint.id <= targetId)).toBe(true);

    const audit = await saver.history('rb');
    expect(
      audit
        .filter((r) => r.status === 'rolledBack')
        .map((r) => r.checkpointId)
        .sort(),
    ).toEqual([...rolledBack].sort());
    // A rolled-back checkpoint can still be read by id, for the audit.
    const undone = await saver.getTuple({ configurable: { thread_id: 'rb', checkpoint_id: rolledBack[0] } });
    expect([undone?.checkpoint.id, undone?.checkpoint.channel_values.count]).toEqual([rolledBack[0], 4]);
    const marker = (await saver.store.read('langgraph:rb:')).find((e) => e.type === LangGraphEvents.RolledBack);
    expect(marker?.data).toMatchObject({ target: targetId, reason: 'inc 3 was wrong' });

    // The thread continues from the target.
    const after = await graph.invoke({ until: 3 }, config);
    expect(after.log).toEqual(['start', 'inc 1', 'inc 2', 'inc 3']);
    expect((await s_verify(saver)).ok).toBe(true);
  });

  it('lists threads, across namespaces, without deleted ones; a deleted thread can start again', async () => {
    const saver = new RewindCheckpointSaver(await store());
    await chain(saver, 'a:1/é', 1);
    await chain(saver, 'a:1/é', 1, 'sub:task');
    await chain(saver, 'b', 2);
    await chain(saver, 'c', 1);
    await saver.deleteThread('c');
    const threads = await saver.listThreads();
    expect(threads.map((t) => t.threadId).sort()).toEqual(['a:1/é', 'b']);
    expect(threads.find((t) => t.threadId === 'a:1/é')?.namespaces.sort()).toEqual(['', 'sub:task']);
    expect(await saver.getTuple(thread('c'))).toBeUndefined();
    // Deleting is recorded, never erasing: the tombstone follows the checkpoint.
    expect((await saver.store.read('langgraph:c:')).map((e) => e.type)).toEqual([
      LangGraphEvents.Checkpoint,
      LangGraphEvents.ThreadDeleted,
    ]);
    await chain(saver, 'c', 2);
    expect(await all(saver.list(thread('c')))).toHaveLength(2);
    expect((await saver.listThreads()).map((t) => t.threadId).sort()).toEqual(['a:1/é', 'b', 'c']);
  });

  it('two savers on one thread never fork it silently', async () => {
    const s1 = await store();
    const s2 = await reopen(s1);
    const a = new RewindCheckpointSaver(s1);
    const b = new RewindCheckpointSaver(s2);
    const [root] = await chain(a, 'race', 1);
    const fromRoot = { configurable: { thread_id: 'race', checkpoint_ns: '', checkpoint_id: root } };
    expect((await b.getTuple(thread('race')))?.checkpoint.id).toBe(root);

    // Both continue from the same checkpoint, each unaware of the other.
    await a.put(fromRoot, checkpointAt(2), { source: 'loop', step: 1, parents: {} }, { step: 2 });
    await expect(b.put(fromRoot, checkpointAt(2), { source: 'loop', step: 1, parents: {} }, { step: 2 })).rejects.toBeInstanceOf(
      CheckpointConflictError,
    );
    // b learned of a's checkpoint, so continuing from the real head works.
    const head = (await b.getTuple(thread('race')))?.config;
    await b.put(head as never, checkpointAt(3), { source: 'loop', step: 2, parents: {} }, { step: 3 });
    // Writes never conflict: they merge.
    await a.putWrites(head as never, [['x', 1]], 'ta');
    await b.putWrites(head as never, [['y', 2]], 'tb');
    expect((await a.getTuple(head as never))?.pendingWrites).toEqual([
      ['ta', 'x', 1],
      ['tb', 'y', 2],
    ]);
    expect((await a.list(thread('race')).next()).value?.checkpoint.channel_values).toEqual({ step: 3 });
    expect((await s1.verify()).ok).toBe(true);
  });

  it('racing puts from one parent: exactly one wins, the other gets a typed conflict', async () => {
    const s1 = await store();
    const savers = [new RewindCheckpointSaver(s1), new RewindCheckpointSaver(await reopen(s1))];
    const [root] = await chain(savers[0] as RewindCheckpointSaver, 'race2', 1);
    const fromRoot = { configurable: { thread_id: 'race2', checkpoint_ns: '', checkpoint_id: root } };
    for (const s of savers) await s.getTuple(thread('race2'));
    const results = await Promise.allSettled(
      savers.map((s, i) => s.put(fromRoot, checkpointAt(2 + i), { source: 'loop', step: 1, parents: {} }, { step: 2 + i })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(failed.reason).toBeInstanceOf(CheckpointConflictError);
    expect(await all(savers[1]?.list(thread('race2')) as AsyncIterable<unknown>)).toHaveLength(2);
  });

  it('a writer behind a rollback is refused', async () => {
    const s1 = await store();
    const a = new RewindCheckpointSaver(s1);
    const b = new RewindCheckpointSaver(await reopen(s1));
    const ids = await chain(a, 'stale', 3);
    await b.getTuple(thread('stale'));
    await a.rollback('stale', ids[0] as string, 'bad steps');
    const fromHead = { configurable: { thread_id: 'stale', checkpoint_ns: '', checkpoint_id: ids[2] } };
    await expect(b.put(fromHead, checkpointAt(4), { source: 'loop', step: 3, parents: {} }, { step: 4 })).rejects.toThrow(/rolled back/);
  });

  it('commits concurrent calls on one thread together, and a fan-out graph matches MemorySaver', async () => {
    const s = await store();
    const saver = new RewindCheckpointSaver(s);
    const [root] = await chain(saver, 'fan', 1);
    const at = { configurable: { thread_id: 'fan', checkpoint_ns: '', checkpoint_id: root } };
    let appends = 0;
    const append = s.append.bind(s);
    s.append = (...args) => {
      appends++;
      return append(...args);
    };
    await Promise.all(Array.from({ length: 10 }, (_, i) => saver.putWrites(at, [['out', i]], `task-${i}`)));
    s.append = append;
    // Ten calls in one turn: the first finds the stream idle, the nine others join its batch, one append.
    expect(appends).toBe(1);
    expect((await saver.getTuple(at))?.pendingWrites).toHaveLength(10);

    const run = async (checkpointer: BaseCheckpointSaver) => {
      const graph = new StateGraph(
        Annotation.Root({ hits: Annotation<string[]>({ reducer: (a, b) => a.concat(b).sort(), default: () => [] }) }),
      )
        .addNode('a', () => ({ hits: ['a'] }))
        .addNode('b', () => ({ hits: ['b'] }))
        .addNode('c', () => ({ hits: ['c'] }))
        .addNode('join', (st) => ({ hits: [`join:${st.hits.length}`] }))
        .addEdge(START, 'a')
        .addEdge(START, 'b')
        .addEdge(START, 'c')
        .addEdge(['a', 'b', 'c'], 'join')
        .addEdge('join', END)
        .compile({ checkpointer });
      const config = { configurable: { thread_id: 'fan-graph' } };
      await graph.invoke({ hits: [] }, config);
      return (await all(graph.getStateHistory(config))).map((h) => [h.values, h.next]);
    };
    expect(await run(saver)).toEqual(await run(new MemorySaver()));
  });

  it('stays correct with a cache smaller than the number of threads', async () => {
    const saver = new RewindCheckpointSaver(await store(), { cacheSize: 1 });
    await chain(saver, 'x', 3);
    await chain(saver, 'y', 2);
    await chain(saver, 'x', 1);
    expect(await all(saver.list(thread('x')))).toHaveLength(4);
    expect(await all(saver.list(thread('y')))).toHaveLength(2);
  });

  it('rejects bad input with typed errors, writing nothing', async () => {
    const s = await store();
    const saver = new RewindCheckpointSaver(s);
    const meta = { source: 'loop' as const, step: 0, parents: {} };
    await expect(saver.put({}, checkpointAt(1), meta, {})).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.put({ configurable: { thread_id: '' } }, checkpointAt(1), meta, {})).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.put(thread('e'), { ...checkpointAt(1), id: '' }, meta, {})).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.put(thread('e'), checkpointAt(1), meta, { step: {} as never })).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.put({ configurable: { thread_id: 'e', checkpoint_ns: 7 } }, checkpointAt(1), meta, {})).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(saver.put(thread('x'.repeat(300)), checkpointAt(1), meta, {})).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.putWrites(thread('e'), [['a', 1]], 't')).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.putWrites({ configurable: { thread_id: 'e', checkpoint_id: 'c' } }, [['a', 1]], '')).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(saver.prune('e', {})).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.prune('e', { keepLast: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.prune('e', { newerThan: new Date('nope') })).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.rollback('e', 'missing', 'why')).rejects.toBeInstanceOf(NotFoundError);
    const [id] = await chain(saver, 'e2', 1);
    await expect(saver.rollback('e2', id as string, '  ')).rejects.toBeInstanceOf(ValidationError);
    await expect(saver.deleteThread(undefined as never)).rejects.toBeInstanceOf(ValidationError);
    await expect(all(saver.list(thread('e'), { limit: -1 }))).rejects.toBeInstanceOf(ValidationError);
    expect((await s.listStreams()).map((x) => x.streamId)).toEqual(['langgraph:e2:']);
  });
});

async function s_verify(saver: RewindCheckpointSaver) {
  return saver.store.verify();
}
