import type { Json } from '../../events/envelope.js';
import type { Compensator, Finisher, Pass } from '../context.js';
import type { UndoHook } from '../events.js';
import type { RetryOptions } from '../policy.js';
import type { Workflow } from '../workflow.js';
import type { Hooks, StepRef } from './decide.js';

/**
 * Where the rollback protocol gets the code it runs: a step's compensate and
 * verify hooks, and the function of a step left open. A pass over the journal
 * (the live one, or a replay) holds the steps' own closures; without one, the
 * workflow's declared `compensations` / `verifications` stand in for them,
 * by step name, when the step's journaled hooks say that is enough.
 */
export class Closures {
  readonly #workflow: Pick<Workflow, 'compensations' | 'verifications'>;
  readonly #pass: Pick<Pass, 'compensators' | 'finishers'> | undefined;
  /** A replay pass met every journaled step it could: a step it did not find has no closure to find. */
  readonly replayed: boolean;

  constructor(
    workflow: Pick<Workflow, 'compensations' | 'verifications'>,
    pass?: Pick<Pass, 'compensators' | 'finishers'>,
    replayed = false,
  ) {
    this.#workflow = workflow;
    this.#pass = pass;
    this.replayed = replayed;
  }

  /** What the decider asks: the step's undo hooks, or undefined when nothing here says (replay to learn). */
  hooks(step: { name: string; key: string; undo?: readonly UndoHook[] }): Hooks | undefined {
    const own = this.#pass?.compensators.get(step.key);
    if (own) return { compensate: !!own.compensate, verify: !!own.verify };
    const open = this.#pass?.finishers.get(step.key);
    const declared = this.#declared(step.name);
    if (open) return { compensate: !!(open.options.compensate || declared.compensate), verify: !!(open.options.verify || declared.verify) };
    if (step.undo)
      return {
        compensate: step.undo.includes('compensate') || !!declared.compensate,
        verify: step.undo.includes('verify') || !!declared.verify,
      };
    if (this.replayed) return { compensate: !!declared.compensate, verify: !!declared.verify };
    return undefined;
  }

  /**
   * The closures that undo one completed step: the pass's own, or the declared
   * ones when every hook the step was given inline has a declared stand-in.
   * Undefined when only a replay can bring them back.
   */
  compensator(step: StepRef & { undo?: readonly UndoHook[] }, result: Json | undefined, retry: RetryOptions): Compensator | undefined {
    const own = this.#pass?.compensators.get(step.key);
    if (own) return own;
    const { compensate, verify } = this.#declared(step.name);
    // A step the replay met open and the protocol then settled: its hooks are in its options.
    const open = this.#pass?.finishers.get(step.key);
    if (open) {
      const { options } = open;
      return {
        step: step.name,
        key: step.key,
        result,
        compensate: options.compensate ?? compensate,
        verify: options.verify ?? verify,
        retry: options.compensationRetry ?? retry,
      };
    }
    const inline = step.undo ?? (this.replayed ? [] : undefined);
    if (!inline || (inline.includes('compensate') && !compensate) || (inline.includes('verify') && !verify)) return undefined;
    return { step: step.name, key: step.key, result, compensate, verify, retry };
  }

  /** The function of a step left open, as a replay met it. */
  finisher(step: StepRef): Finisher | undefined {
    return this.#pass?.finishers.get(step.key);
  }

  #declared(name: string) {
    return { compensate: this.#workflow.compensations?.[name], verify: this.#workflow.verifications?.[name] };
  }
}
