import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunInfo, Workflow } from '../../runtime/index.js';
import type { EventStore } from '../../store/types.js';

/** What the CLI uses of the examples that ship with the package (examples/index.ts). */
export interface BundledExamples {
  /** The workflows `rewind` commands use when no --workflows module is given. */
  exampleWorkflows(): Workflow[];
  /** `rewind demo`: the travel agent whose hotel is full, rolled back and retried. */
  runTravelDemo(
    store: EventStore,
    options: { runId: string },
  ): Promise<{ runId: string; info: RunInfo; world: { flights: Map<string, string>; payments: Map<string, string> } }>;
}

/**
 * The examples, loaded by path as a --workflows module is: `dist/examples`
 * beside `dist/src` in the package, `examples/` when the CLI runs from the
 * sources (tsx, vitest). They import the package by its name, as a user's code
 * does, so they live outside src, and src never imports them.
 */
export async function loadExamples(): Promise<BundledExamples> {
  // '.js' once compiled, '.ts' from the sources.
  const extension = extname(fileURLToPath(import.meta.url));
  return (await import(new URL(`../../../examples/index${extension}`, import.meta.url).href)) as BundledExamples;
}
