import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { ValidationError } from '../../src/events/errors.js';
import { EventRegistry } from '../../src/events/registry.js';

const stored = (type: string, schemaVersion: number, data: unknown): EventEnvelope => ({
  id: 'e1',
  streamId: 's',
  version: 1,
  position: 1,
  type,
  schemaVersion,
  data,
  metadata: {},
  recordedAt: '2026-01-01T00:00:00.000Z',
  hash: '',
});

describe('EventRegistry', () => {
  it('validates data against the schema of the current version', () => {
    const registry = new EventRegistry().register('Paid', { schema: z.object({ amount: z.number().positive() }) });
    expect(() => registry.validate('Paid', 1, { amount: 5 })).not.toThrow();
    const error = (() => {
      try {
        registry.validate('Paid', 1, { amount: -1 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]).toContain('amount');
  });

  it('refuses a schema version newer than the code knows', () => {
    const registry = new EventRegistry().register('Paid', { schemaVersion: 2 });
    expect(() => registry.validate('Paid', 3, {})).toThrow(/unknown to this code/);
  });

  it('upcasts step by step to the current version and leaves other types alone', () => {
    const registry = new EventRegistry()
      .upcast('Paid', 1, (d: { cents: number }) => ({ amount: d.cents / 100 }))
      .upcast('Paid', 2, (d: { amount: number }) => ({ amount: d.amount, currency: 'EUR' }));
    expect(registry.currentVersion('Paid')).toBe(3);
    expect(registry.upcastEvent(stored('Paid', 1, { cents: 250 }))).toMatchObject({
      schemaVersion: 3,
      data: { amount: 2.5, currency: 'EUR' },
    });
    expect(registry.upcastEvent(stored('Paid', 2, { amount: 1 }))).toMatchObject({
      schemaVersion: 3,
      data: { amount: 1, currency: 'EUR' },
    });
    const other = stored('Other', 1, { x: 1 });
    expect(registry.upcastEvent(other)).toBe(other);
  });

  it('names the missing upcaster', () => {
    const registry = new EventRegistry().register('Paid', { schemaVersion: 3 }).upcast('Paid', 2, (d) => d);
    expect(() => registry.upcastEvent(stored('Paid', 1, {}))).toThrow(/no upcaster from "Paid" v1 to v2/);
  });

  it('refuses a second upcaster for the same step and a bad schema version', () => {
    const registry = new EventRegistry().upcast('A', 1, (d) => d);
    expect(() => registry.upcast('A', 1, (d) => d)).toThrow(ValidationError);
    expect(() => registry.register('B', { schemaVersion: 0 })).toThrow(ValidationError);
  });
});
