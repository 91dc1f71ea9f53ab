import { afterEach, describe, expect, it } from 'vitest';
import { builtInProjections } from '../../src/runtime/read-models.js';
import { backends, type Harness, startHarness } from './helpers.js';
import { tripRuntime, World } from './workflows.js';

let h: Harness;
afterEach(() => h?.close());

describe.each(backends)('projection status on $name', (backend) => {
  it('reports every read model, and one by name', async () => {
    h = await startHarness(backend, { runtime: tripRuntime(new World()), projections: builtInProjections });
    await h.runtime?.start('trip', { hotel: 'H' }, { runId: 'p1' });
    const head = await h.store.headPosition();

    const { projections } = await (await h.call('/projections')).json();
    expect(projections.map((p: { name: string }) => p.name).sort()).toEqual(builtInProjections.map((p) => p.name).sort());
    for (const p of projections) expect(p).toMatchObject({ head, error: null, state: 'ok' });

    await h.projections?.catchUp();
    const runs = await (await h.call(`/projections/${builtInProjections[0].name}`)).json();
    expect(runs).toMatchObject({ name: builtInProjections[0].name, position: head, lagEvents: 0 });

    const missing = await h.call('/projections/nope');
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.message).toMatch(/projection "nope"/);
  });
});
