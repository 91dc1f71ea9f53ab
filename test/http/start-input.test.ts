// POST /runs knows what each workflow accepts: the OpenAPI document says it,
// and input a workflow would refuse never reaches its first step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { researchWorkflow, StandInModel } from '../../examples/research.js';
import { TravelWorld, travelWorkflow } from '../../examples/travel.js';
import { createRuntime, defineWorkflow } from '../../src/runtime/index.js';
import { type Harness, startHarness } from './helpers.js';

describe('POST /runs with the server given its workflows', () => {
  const world = new TravelWorld();
  const free = defineWorkflow({ name: 'free-form', initialState: null, apply: (s: null) => s, run: async () => 'ok' });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(undefined, {
      runtime: (store) => createRuntime({ store }),
      workflows: [travelWorkflow(world), researchWorkflow(new StandInModel()), free],
    });
  });
  afterAll(() => h.close());

  it('the OpenAPI document gives one body per workflow, with the input it accepts', async () => {
    const doc = await (await h.call('/openapi.json')).json();
    const post = doc.paths['/runs'].post;
    expect(post.description).toContain('Workflows and the input each accepts: travel, research, free-form');
    const variants = post.requestBody.content['application/json'].schema.oneOf as Record<string, any>[];
    expect(variants.map((v) => [v.title, v.properties.workflow.enum, v.required])).toEqual([
      ['travel', ['travel'], ['workflow', 'input']],
      ['research', ['research'], ['workflow', 'input']],
      ['free-form', ['free-form'], ['workflow']],
    ]);
    expect(variants[0]?.properties.input).toMatchObject({
      type: 'object',
      required: ['traveller', 'from', 'to', 'hotels'],
      properties: { hotels: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } } },
    });
    expect(variants[1]?.properties.input).toMatchObject({ properties: { topic: { type: 'string', minLength: 3 } } });
    expect(variants[2]?.properties.input.description).toBe('any JSON: this workflow declares no input schema');
  });

  it('refuses input the workflow would refuse, naming the field, and writes nothing', async () => {
    const bad = await h.call('/runs', {
      json: { workflow: 'travel', runId: 't-bad', input: { traveller: 'Ada', from: 'LHR', to: 'OSL', hotels: 'Grand Hotel' } },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({
      code: 'VALIDATION',
      message: 'invalid request: input.hotels: Invalid input: expected array, received string',
    });
    expect(await h.store.read('run-t-bad')).toEqual([]);
    expect(world.payments.size).toBe(0);

    const unknown = await h.call('/runs', { json: { workflow: 'teleport', input: {} } });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.message).toBe(
      "invalid request: workflow: Invalid discriminator value. Expected 'travel' | 'research' | 'free-form'",
    );
  });

  it('starts a run whose input fits', async () => {
    const ok = await h.call('/runs', {
      json: { workflow: 'travel', runId: 't-ok', input: { traveller: 'Ada', from: 'LHR', to: 'OSL', hotels: ['Harbour Inn'] } },
    });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toMatchObject({ runId: 't-ok', workflow: 'travel' });
    const free = await h.call('/runs', { json: { workflow: 'free-form', runId: 'f-1' } });
    expect(free.status).toBe(202);
  });
});
