/**
 * A LangGraph agent checkpointed in Rewind's event log: time travel and a rollback.
 *
 *   npx tsx examples/langgraph-agent.ts [sqlite:./agent.db]
 *
 * The "agent" is deterministic (no model, no network): it drafts a trip plan
 * one step at a time, and a reviewer node flags a bad step. We look back
 * through the thread's history, replay from an older checkpoint with another
 * input (time travel), then roll the thread back past the bad step and go on.
 */
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { openStore } from 'rewind-runtime';
import { RewindCheckpointSaver } from 'rewind-runtime/langgraph';

const Plan = Annotation.Root({
  city: Annotation<string>({ reducer: (_a, b) => b, default: () => 'Lisbon' }),
  steps: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  budget: Annotation<number>({ reducer: (_a, b) => b, default: () => 1000 }),
});

const ideas = ['book a flight', 'find a hotel', 'rent a yacht', 'plan a food tour', 'buy museum passes'];
const cost: Record<string, number> = {
  'book a flight': 300,
  'find a hotel': 400,
  'rent a yacht': 5000,
  'plan a food tour': 80,
  'buy museum passes': 60,
};

const url = process.argv[2] ?? 'memory:';
const store = await openStore(url);
const saver = new RewindCheckpointSaver(store);

const graph = new StateGraph(Plan)
  .addNode('draft', (s) => {
    const idea = ideas[s.steps.length] as string;
    return { steps: [`${idea} in ${s.city}`], budget: s.budget - (cost[idea] ?? 0) };
  })
  .addEdge(START, 'draft')
  .addConditionalEdges('draft', (s) => (s.steps.length < 4 ? 'draft' : END))
  .compile({ checkpointer: saver });

const threadId = `trip-${Date.now()}`;
const config = { configurable: { thread_id: threadId } };

console.log('1. Run the agent');
let state = await graph.invoke({ city: 'Lisbon' }, config);
console.log(state);

console.log('\n2. The thread history (newest first), from the log');
const history = [];
for await (const snapshot of graph.getStateHistory(config)) history.push(snapshot);
for (const h of history)
  console.log(`  step ${h.metadata?.step}: ${h.values.steps?.length ?? 0} steps, budget ${h.values.budget}, next [${h.next}]`);

console.log('\n3. Time travel: from the checkpoint after the first step, plan for Porto instead');
const afterFirst = history.find((h) => h.values.steps?.length === 1 && h.next.includes('draft'));
if (!afterFirst) throw new Error('no checkpoint after the first step');
const forked = await graph.invoke({ city: 'Porto' }, afterFirst.config);
console.log(forked.steps);
// The fork counted the same channel versions again; the original branch still reads its own values.
const original = await graph.getState(history[0]?.config ?? config);
console.log('  the original branch is untouched:', original.values.steps);

console.log('\n4. A reviewer finds the yacht over budget: roll back to just before it was drafted');
const beforeYacht = (await collect(graph.getStateHistory(config))).find((h) => h.values.city === 'Porto' && h.values.steps?.length === 2);
const target = beforeYacht?.config.configurable?.checkpoint_id as string;
const { rolledBack } = await saver.rollback(threadId, target, 'the yacht blows the budget');
console.log(`  rolled back ${rolledBack.length} checkpoints; latest is ${target} again`);

console.log('\n5. Continue with a cheaper idea');
ideas[2] = 'take the tram';
state = await graph.invoke(null, config);
console.log(state);

console.log('\n6. Nothing was erased: the audit view, and the hash chain');
for (const r of await saver.history(threadId)) console.log(`  v${r.version} ${r.checkpointId} ${r.status}`);
console.log(await store.verify());
console.log(
  'threads:',
  (await saver.listThreads()).map((t) => t.threadId),
);
await store.close();

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
