import type { Workflow } from 'rewind-runtime';
import { researchWorkflow, StandInModel } from './research.js';
import { TravelWorld, travelWorkflow } from './travel.js';

export { runTravelDemo } from './travel.js';

/**
 * The examples' workflows, with fresh in-memory fakes for the outside world:
 * what `rewind` commands use when no --workflows module is given, so the
 * demo's runs can be resumed, rolled back and retried from the CLI.
 */
export function exampleWorkflows(): Workflow[] {
  return [travelWorkflow(new TravelWorld()), researchWorkflow(new StandInModel())];
}
