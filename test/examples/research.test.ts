import { describe, expect, it } from 'vitest';
import { researchWorkflow, runResearchDemo, StandInModel } from '../../examples/research.js';
import { createRuntime } from '../../src/runtime/index.js';
import { crashAfter, makeStore, SimulatedCrash } from '../runtime/helpers.js';

describe('examples/research', () => {
  it('answers from the stand-in model, journaling every call', async () => {
    const store = await makeStore();
    const { info, model } = await runResearchDemo(store, { runId: 'r' });
    expect(info.status).toBe('completed');
    expect(model.calls).toBe(5);
    expect(info.state.notes).toHaveLength(3);
    expect((info.output as { answer: string }).answer).toMatch(/^Findings/);
  });

  it('a resumed run never calls the model again for a recorded answer, and ends exactly as a clean run', async () => {
    const clean = await runResearchDemo(await makeStore(), { runId: 'same' });

    const store = await makeStore();
    const model = new StandInModel();
    const wf = researchWorkflow(model);
    const crashing = crashAfter(store, (e) => e.type === 'StepCompleted' && (e.data as { name: string }).name === 'model:summarise:1');
    await expect(
      createRuntime({ store: crashing }).start(wf, { topic: 'journal rollback agents' }, { runId: 'same' }),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    expect(model.calls).toBe(3);
    const info = await createRuntime({ store, workflows: [wf] }).resume('same');
    expect(model.calls).toBe(5);
    expect((info.output as { answer: string }).answer).toBe((clean.info.output as { answer: string }).answer);
    expect(info.state).toEqual(clean.info.state);
  });

  it('a malformed model answer fails its schema and is retried', async () => {
    const store = await makeStore();
    const model = new StandInModel();
    model.garbleOnce.add('PLAN\njournal rollback agents');
    const { info } = await runResearchDemo(store, { runId: 'g', model });
    expect(info.status).toBe('completed');
    expect(model.calls).toBe(6);
    const failed = (await store.read('run-g')).find((e) => e.type === 'StepFailed');
    expect(failed?.data).toMatchObject({ name: 'model:plan', trigger: 'output-invalid', final: false });
  });
});
