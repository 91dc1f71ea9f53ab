import type { EventEnvelope } from '../../src/events/envelope.js';
import { createCoordinator, GroupEvents, groupStreamOf, isGroupEvent } from '../../src/runtime/coordinator.js';
import {
  createRuntime,
  effectiveEvents,
  isRunEvent,
  RunEvents,
  type Runtime,
  runStreamId,
  type Workflow,
} from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import type { Ledger } from './ledger.js';
import { PARTICIPANTS, play, type RunState, type Scenario, type World } from './scenarios.js';

/** The runtime every process of a crash test drives with: quick compensation retries, so a flaky one costs no wall time. */
export function tortureRuntime(store: EventStore, workflow: ReturnType<Scenario['workflow']>): Runtime {
  return createRuntime({ store, workflows: [workflow], compensationRetry: { attempts: 2, initialDelayMs: 1 } });
}

/** Plays the scenario's operator from what the log says until the scenario is over. */
export async function operate(store: EventStore, world: World, scenario: Scenario, runId: string): Promise<void> {
  const workflow = scenario.workflow(world);
  const runtime = tortureRuntime(store, workflow);
  const definition = scenario.group?.(world);
  const group = definition && { coordinator: createCoordinator(runtime, { groups: [definition] }), definition };
  for (let moves = 0; moves < 40; moves++) {
    const events = await store.read(runStreamId(runId));
    const info = events.length > 0 ? await runtime.get(runId) : undefined;
    const state: RunState = { info, events };
    if (group && (await store.streamVersion(groupStreamOf(runId))) > 0) state.group = await group.coordinator.get(runId);
    const move = scenario.next(state, world);
    if (!move) return;
    await play(runtime, workflow, runId, move, group);
  }
  throw new Error(`scenario ${scenario.name} did not end within 40 moves`);
}

/**
 * Everything a crash may not break, checked against the log and the
 * provider's ledger once the scenario is over. Returns what is wrong, in
 * words; empty when nothing is.
 */
export async function violations(store: EventStore, ledger: Ledger, scenario: Scenario, runId: string): Promise<string[]> {
  if (!scenario.group) return runViolations(store, ledger, scenario.expect, scenario.workflow({ ledger, dir: '' }), runId);
  const definition = scenario.group({ ledger, dir: '' });
  const out: string[] = [];
  for (const [i, name] of PARTICIPANTS.entries()) {
    const workflow = definition.participants[i]?.workflow as Workflow;
    const expect = { ...scenario.expect, net: name === 'payer' ? [...scenario.expect.net, 'charge'] : scenario.expect.net };
    for (const v of await runViolations(store, ledger, expect, workflow, `${runId}.${name}`)) out.push(`${name}: ${v}`);
  }
  // The group's markers are where GroupRolledBack says, and a finished group resumed again writes nothing.
  const groupEvents = await store.read(groupStreamOf(runId));
  for (const e of groupEvents) {
    if (!isGroupEvent(e, GroupEvents.GroupRolledBack)) continue;
    for (const m of e.data.markers) {
      const [marker] = await store.read(runStreamId(m.runId), { from: m.version, to: m.version });
      if (marker?.type !== RunEvents.RolledBack || marker.position < e.position)
        out.push(`GroupRolledBack names ${m.runId}@${m.version}, which is not its marker`);
    }
  }
  const runtime = tortureRuntime(store, definition.participants[0]?.workflow as Workflow);
  const coordinator = createCoordinator(runtime, { groups: [definition] });
  const info = await coordinator.resume(runId);
  if (info.status !== 'completed') out.push(`group ${info.status}, expected completed`);
  if (info.version !== groupEvents.length)
    out.push(`a second resume of the group wrote events (v${groupEvents.length} -> v${info.version})`);
  return out;
}

async function runViolations(
  store: EventStore,
  ledger: Ledger,
  expected: Scenario['expect'],
  workflow: Workflow,
  runId: string,
): Promise<string[]> {
  const out: string[] = [];
  const events = await store.read(runStreamId(runId));
  const entries = ledger.entries().filter((e) => e.key.startsWith(`${runId}:`));
  for (const v of entries.filter((e) => e.kind === 'violation')) out.push(`provider refused: ${v.note} (${v.key})`);

  // Every effect was done under a key the journal holds; one key per logical step across re-executions.
  const started = new Map<string, EventEnvelope>();
  const logical = new Map<string, Set<string>>();
  let path = 0;
  for (const e of events) {
    if (isRunEvent(e, RunEvents.RolledBack)) path++;
    if (!isRunEvent(e, RunEvents.StepStarted)) continue;
    started.set(e.data.idempotencyKey, e);
    if (e.data.settling) continue;
    const id = `${e.data.seq}:${e.data.name}@path${path}`;
    logical.set(id, (logical.get(id) ?? new Set()).add(e.data.idempotencyKey));
  }
  for (const [id, keys] of logical) if (keys.size > 1) out.push(`logical step ${id} ran under ${keys.size} keys: ${[...keys].join(', ')}`);
  for (const e of entries) if (e.kind === 'do' && !started.has(e.key)) out.push(`effect ${e.key} done with no StepStarted in the log`);

  // The effects left in the world are exactly the effective completed steps: nothing undone that counts, nothing kept that was rolled back.
  const undone = new Set(entries.filter((e) => e.kind === 'undo').map((e) => e.key));
  const net = entries.filter((e) => e.kind === 'do' && !undone.has(e.key));
  const effective = new Set<string>();
  for (const e of effectiveEvents(events)) if (isRunEvent(e, RunEvents.StepCompleted)) effective.add(e.data.idempotencyKey);
  // Irreversible steps a rollback was told to go back past keep their effects, named in its marker.
  const kept = new Set<string>();
  for (const e of events) if (isRunEvent(e, RunEvents.RolledBack)) for (const s of e.data.irreversible ?? []) kept.add(s.stepKey);
  for (const e of net)
    if (!effective.has(e.key) && !kept.has(e.key)) out.push(`effect ${e.key} was rolled back in the log but never undone`);
  for (const key of effective) if (undone.has(key)) out.push(`effect ${key} counts in the log but was undone`);
  const names = net.map((e) => e.step).sort();
  if (names.join(',') !== [...expected.net].sort().join(',')) out.push(`effects left: [${names}], expected [${expected.net}]`);

  // Newest first: each rollback undid its steps in the reverse order of their completion.
  const completedAt = new Map<string, number>();
  for (const e of events) if (isRunEvent(e, RunEvents.StepCompleted)) completedAt.set(e.data.idempotencyKey, e.version);
  const order = entries.filter((e) => e.kind === 'undo').map((e) => e.key);
  for (const marker of events) {
    if (!isRunEvent(marker, RunEvents.RolledBack)) continue;
    const mine = new Set<string>();
    for (const e of events.slice(marker.data.requestVersion, marker.version - 1)) {
      if (isRunEvent(e, RunEvents.CompensationCompleted) || isRunEvent(e, RunEvents.ResolvedByHand)) mine.add(e.data.stepKey);
    }
    const undoneHere = order.filter((key) => mine.has(key));
    const expected = [...undoneHere].sort((a, b) => (completedAt.get(b) ?? 0) - (completedAt.get(a) ?? 0));
    if (undoneHere.join() !== expected.join())
      out.push(`rollback at v${marker.version} undid [${undoneHere}], newest first is [${expected}]`);
  }

  const last = events[events.length - 1];
  const runtime = tortureRuntime(store, workflow);
  const info = await runtime.get(runId);
  if (info.status !== expected.status) out.push(`status ${info.status}, expected ${expected.status}`);
  if (info.rollbacks.length !== expected.rollbacks) out.push(`${info.rollbacks.length} rollbacks, expected ${expected.rollbacks}`);
  const report = await store.verify({ streamId: runStreamId(runId) });
  if (!report.ok) out.push(`verify: ${JSON.stringify(report)}`);

  // A second resume of a finished run writes nothing and runs nothing.
  const touched = () => JSON.stringify(ledger.entries().filter((e) => e.key.startsWith(`${runId}:`)));
  const before = touched();
  await runtime.resume(runId).catch((e: unknown) => out.push(`resume of the finished run threw ${String(e)}`));
  const after = await store.read(runStreamId(runId), { direction: 'backward', limit: 1 });
  if (after[0]?.version !== last?.version) out.push(`a second resume wrote events (v${last?.version} -> v${after[0]?.version})`);
  if (touched() !== before) out.push('a second resume touched the provider');
  return out;
}
