/**
 * LangGraph JS: a graph of 10 nodes in a line with the Postgres checkpointer and
 * durability "sync" (each step's checkpoint is written before the next step starts).
 * LangGraph is a library with no worker pool, so the harness runs at most Baton's
 * concurrency (32) graphs at once; a run has finished when invoke() returns.
 */
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import { measure } from './harness.ts';

const State = Annotation.Root({ count: Annotation<number>({ reducer: (_, next) => next, default: () => 0 }) });

await measure(async (e) => {
  const checkpointer = PostgresSaver.fromConnString(e.databaseUrl);
  await checkpointer.setup();
  // Nodes n0…n(steps-1) in a line; the type-level builder cannot follow a loop, hence the casts.
  const graph = new StateGraph(State) as unknown as {
    addNode(name: string, fn: (s: typeof State.State) => Partial<typeof State.State>): unknown;
    addEdge(from: string, to: string): unknown;
    compile(o: { checkpointer: PostgresSaver }): { invoke(input: unknown, config: unknown): Promise<unknown> };
  };
  for (let i = 0; i < e.steps; i++) graph.addNode(`n${i}`, (s) => ({ count: s.count + 1 }));
  graph.addEdge(START, 'n0');
  for (let i = 1; i < e.steps; i++) graph.addEdge(`n${i - 1}`, `n${i}`);
  graph.addEdge(`n${e.steps - 1}`, END);
  const app = graph.compile({ checkpointer });
  return {
    inFlight: e.concurrency,
    async run(id, steps) {
      if (steps !== e.steps) throw new Error(`the graph has ${e.steps} nodes`);
      await app.invoke({ count: 0 }, { configurable: { thread_id: id }, durability: 'sync' });
    },
    async close() {
      await checkpointer.end();
    },
  };
});
