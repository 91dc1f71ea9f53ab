import { Annotation, END, interrupt, START, StateGraph } from '@langchain/langgraph';
import type { BaseCheckpointSaver } from '@langchain/langgraph-checkpoint';

/** A deterministic graph: `inc` loops until count reaches `until`, then `ask` interrupts for an answer. */
export const CounterState = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  count: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
  until: Annotation<number>({ reducer: (_a, b) => b, default: () => 3 }),
});

export function counterGraph(checkpointer: BaseCheckpointSaver, options: { ask?: boolean } = {}) {
  return new StateGraph(CounterState)
    .addNode('inc', (s) => ({ count: s.count + 1, log: [`inc ${s.count + 1}`] }))
    .addNode('ask', () => {
      const answer = interrupt('continue?');
      return { log: [`answer ${String(answer)}`] };
    })
    .addEdge(START, 'inc')
    .addConditionalEdges('inc', (s) => (s.count < s.until ? 'inc' : options.ask ? 'ask' : END))
    .addEdge('ask', END)
    .compile({ checkpointer });
}
