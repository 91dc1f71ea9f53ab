import type { CompensationIO, RunContext, StepIO, StepOptions, Workflow } from '../runtime/workflow.js';

// Stubbed step results and compensations for workflow tests: the workflow's
// own code runs, and the steps named in the test answer as the test says
// instead of calling the world.

/** A stand-in that is not a plain result: made by fails(), hangs() or sequence(). */
export class Stub {
  readonly kind: 'fails' | 'hangs' | 'sequence';
  readonly error?: Error;
  readonly items: readonly StepStub[];
  #calls = 0;
  constructor(kind: Stub['kind'], error?: Error, items: readonly StepStub[] = []) {
    this.kind = kind;
    if (error) this.error = error;
    this.items = items;
  }
  /** For a sequence: the item for this call (the last one repeats). */
  next(): StepStub {
    return this.items[Math.min(this.#calls++, this.items.length - 1)];
  }
}

/**
 * What a stubbed step does: return this value (JSON), call this function
 * with the step's io, or one of fails() / hangs() / sequence().
 */
export type StepStub<T = unknown> = T | ((io: StepIO) => T | Promise<T>) | Stub;

/**
 * What a stubbed compensation (or verify hook) does: call this function with the step's result and its io,
 * one of fails() / hangs() / sequence(), or `null`: succeed doing nothing.
 */
export type UndoStub = ((result: any, io: CompensationIO) => unknown) | Stub | null;

/** Throws this error (a string becomes an Error with that message) on every call. */
export function fails(error: string | Error): Stub {
  return new Stub('fails', typeof error === 'string' ? new Error(error) : error);
}

/** Never settles until its signal aborts: a step timeout, a cancel or a shutdown then ends it. */
export function hangs(): Stub {
  return new Stub('hangs');
}

/** The first call does what the first stub says, the second what the second says…; the last one repeats. */
export function sequence(...stubs: StepStub[]): Stub {
  if (stubs.length === 0) throw new RangeError('sequence() needs at least one stub');
  return new Stub('sequence', undefined, stubs);
}

/** One call of a step's function or of an undo hook, as the test saw it. */
export interface StubCall {
  step: string;
  kind: 'step' | 'compensate' | 'verify';
  idempotencyKey: string;
  attempt: number;
}

export interface Stubs {
  steps?: Record<string, StepStub>;
  compensations?: Record<string, UndoStub>;
  verifications?: Record<string, UndoStub>;
}

/**
 * The workflow with its steps' functions and undo hooks replaced where the
 * stubs name them (and every call recorded in `calls`). The journal is the
 * same as the real code's: a step keeps its name, options and hooks' presence.
 */
export function stubbed(workflow: Workflow, stubs: Stubs, calls: StubCall[]): Workflow {
  const { steps = {}, compensations = {}, verifications = {} } = stubs;
  const undo = (kind: 'compensate' | 'verify', step: string, own: ((result: any, io: CompensationIO) => unknown) | undefined) => {
    const stub = (kind === 'compensate' ? compensations : verifications)[step];
    const fn = stub === undefined ? own : (result: unknown, io: CompensationIO) => runUndo(stub, result, io);
    if (!fn) return undefined;
    return (result: unknown, io: CompensationIO) => {
      calls.push({ step, kind, idempotencyKey: io.idempotencyKey, attempt: io.attempt });
      return fn(result, io);
    };
  };
  const declared = (kind: 'compensate' | 'verify') => {
    const own = (kind === 'compensate' ? workflow.compensations : workflow.verifications) ?? {};
    const names = new Set([...Object.keys(own), ...Object.keys(kind === 'compensate' ? compensations : verifications)]);
    return Object.fromEntries([...names].map((step) => [step, undo(kind, step, own[step]) as (r: any, io: CompensationIO) => unknown]));
  };
  const step =
    (ctx: RunContext) =>
    <T>(name: string, fn: (io: StepIO) => T | Promise<T>, options: StepOptions<T> = {}): Promise<T> => {
      const stub = Object.hasOwn(steps, name) ? steps[name] : undefined;
      const own = stub === undefined ? fn : (io: StepIO) => runStep(stub, io) as T | Promise<T>;
      const compensate = options.compensate && undo('compensate', name, options.compensate);
      const verify = options.verify && undo('verify', name, options.verify);
      return ctx.step(
        name,
        (io) => {
          calls.push({ step: name, kind: 'step', idempotencyKey: io.idempotencyKey, attempt: io.attempt });
          return own(io);
        },
        { ...options, ...(compensate ? { compensate } : {}), ...(verify ? { verify } : {}) },
      );
    };
  return Object.freeze({
    ...workflow,
    compensations: declared('compensate'),
    verifications: declared('verify'),
    run: (ctx: RunContext, input: unknown) => workflow.run(withStubs(ctx, step(ctx)), input),
  });
}

/** The context the workflow code sees: the runtime's own, with `step` going through the stubs. Every other call passes through. */
function withStubs(ctx: RunContext, step: RunContext['step']): RunContext {
  return new Proxy(ctx, {
    get(target, prop) {
      if (prop === 'step') return step;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function runStep(stub: StepStub, io: StepIO): Promise<unknown> {
  if (stub instanceof Stub) {
    if (stub.kind === 'fails') throw stub.error;
    if (stub.kind === 'hangs') return untilAborted(io.signal);
    return runStep(stub.next(), io);
  }
  if (typeof stub === 'function') return (stub as (io: StepIO) => unknown)(io);
  return stub === undefined ? undefined : structuredClone(stub);
}

async function runUndo(stub: UndoStub, result: unknown, io: CompensationIO): Promise<unknown> {
  if (stub === null) return undefined;
  if (stub instanceof Stub) {
    if (stub.kind === 'fails') throw stub.error;
    if (stub.kind === 'hangs') return untilAborted(io.signal);
    return runUndo(stub.next() as UndoStub, result, io);
  }
  return stub(result, io);
}

function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
