import { describe, expect, it } from 'vitest';
import { researchWorkflow, runResearchDemo, StandInModel } from '../../examples/research.js';
import { stepCompleted, testWorkflow } from '../../src/testing/index.js';
import { makeStore } from '../runtime/helpers.js';

const topic = { topic: 'journal rollback agents' };
const research = async (model = new StandInModel()) => testWorkflow(researchWorkflow(model), { store: await makeStore() });

describe('examples/research', () => {
  it('answers from the stand-in model, journaling every call', async () => {
    const { info, model } = await runResearchDemo(await makeStore(), { runId: 'r' });
    expect(info.status).toBe('completed');
    expect(model.calls).toBe(5);
    expect(info.state.notes).toHaveLength(3);
    expect((info.output as { answer: string }).answer).toMatch(/^Findings/);
  });

  it('a resumed run never calls the model again for a recorded answer, and ends exactly as a clean run', async () => {
    const clean = await (await research()).start(topic);
    const model = new StandInModel();
    const t = await research(model);
    await t.start(topic, { runId: 'same', crashAfter: stepCompleted('model:summarise:1') });
    expect(model.calls).toBe(3);
    const run = await t.resume('same');
    expect(model.calls).toBe(5);
    expect(run.output?.answer).toBe(clean.output?.answer);
    expect(run.state).toEqual(clean.state);
  });

  it('a malformed model answer fails its schema and is retried', async () => {
    const model = new StandInModel();
    model.garbleOnce.add('PLAN\njournal rollback agents');
    const run = await (await research(model)).start(topic);
    expect(run.status).toBe('completed');
    expect(model.calls).toBe(6);
    expect(run.events.find((e) => e.type === 'StepFailed')?.data).toMatchObject({
      name: 'model:plan',
      trigger: 'output-invalid',
      final: false,
    });
  });
});
