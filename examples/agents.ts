/**
 * Three agents booking one trip together, each its own run under a
 * coordinator: a planner picks the itinerary and holds the quote, a booker
 * books the flight and the hotel, a payer authorises and charges the card.
 * The card is declined, so the payer fails, and the coordinator rolls all
 * three back to their "planned" checkpoints together: the payer's
 * authorisation is voided, the booker's hotel and flight cancelled, the
 * planner's quote released, and then one atomic commit marks every agent
 * rolled back.
 *
 *   npx tsx examples/agents.ts                               (in this repository)
 *   node node_modules/rewind-runtime/dist/examples/agents.js   (from the installed package)
 */
import {
  createCoordinator,
  createRuntime,
  defineWorkflow,
  type EventStore,
  type GroupDefinition,
  type GroupInfo,
  openStore,
  type Runtime,
} from 'rewind-runtime';

export interface Plan {
  traveller: string;
  flight: string;
  hotel: string;
  total: number;
}

/** The outside world the agents act on; every effect is keyed by the step's idempotency key. */
export class AgentsWorld {
  readonly quotes = new Map<string, 'held' | 'released'>();
  readonly bookings = new Map<string, { what: string; status: 'booked' | 'cancelled' }>();
  readonly payments = new Map<string, { amount: number; status: 'authorized' | 'voided' | 'charged' }>();
  /** Every call, in order: what happened to the world. */
  readonly calls: string[] = [];
  declineCards = true;

  holdQuote(key: string, plan: Plan): string {
    if (!this.quotes.has(key)) this.quotes.set(key, 'held');
    this.calls.push(`planner: hold quote ${plan.total} EUR`);
    return `Q-${key.split(':').at(-2)}`;
  }
  releaseQuote(key: string): void {
    this.quotes.set(key, 'released');
    this.calls.push('planner: release quote');
  }
  book(key: string, what: string): string {
    if (!this.bookings.has(key)) this.bookings.set(key, { what, status: 'booked' });
    this.calls.push(`booker: book ${what}`);
    return `BK-${what.replace(/\W+/g, '')}`;
  }
  cancel(key: string): void {
    const b = this.bookings.get(key);
    if (b) b.status = 'cancelled';
    this.calls.push(`booker: cancel ${b?.what}`);
  }
  authorize(key: string, amount: number): string {
    if (!this.payments.has(key)) this.payments.set(key, { amount, status: 'authorized' });
    this.calls.push(`payer: authorize ${amount} EUR`);
    return `AUTH-${amount}`;
  }
  voidAuthorization(key: string): void {
    const p = this.payments.get(key);
    if (p) p.status = 'voided';
    this.calls.push('payer: void authorization');
  }
  charge(auth: string): string {
    this.calls.push(`payer: charge ${auth}`);
    if (this.declineCards) throw new Error('card declined by the issuer');
    return `CHG-${auth}`;
  }
}

type Log = string[];
const logApply = (s: Log, e: { type: string; data: unknown }): Log => [...s, `${e.type} ${JSON.stringify(e.data)}`];

export function agentWorkflows(world: AgentsWorld) {
  const planner = defineWorkflow<{ traveller: string; to: string }, Log>({
    name: 'planner',
    initialState: [],
    apply: logApply,
    run: async (ctx, input) => {
      const plan = await ctx.step(
        'pick-itinerary',
        (): Plan => ({ traveller: input.traveller, flight: `LHR-${input.to}`, hotel: 'Harbour Inn', total: 840 }),
      );
      await ctx.emit({ type: 'PlanDrafted', data: plan });
      await ctx.checkpoint('planned');
      const quote = await ctx.step('hold-quote', ({ idempotencyKey }) => world.holdQuote(idempotencyKey, plan), {
        compensate: (_q, { stepKey }) => world.releaseQuote(stepKey),
      });
      await ctx.emit({ type: 'QuoteHeld', data: quote });
      return plan;
    },
  });
  const booker = defineWorkflow<Plan, Log>({
    name: 'booker',
    initialState: [],
    apply: logApply,
    run: async (ctx, plan) => {
      await ctx.checkpoint('planned');
      const flight = await ctx.step('book-flight', ({ idempotencyKey }) => world.book(idempotencyKey, `flight ${plan.flight}`), {
        compensate: (_b, { stepKey }) => world.cancel(stepKey),
      });
      await ctx.emit({ type: 'FlightBooked', data: flight });
      const hotel = await ctx.step('book-hotel', ({ idempotencyKey }) => world.book(idempotencyKey, `hotel ${plan.hotel}`), {
        compensate: (_b, { stepKey }) => world.cancel(stepKey),
      });
      await ctx.emit({ type: 'HotelBooked', data: hotel });
      return { flight, hotel };
    },
  });
  const payer = defineWorkflow<{ amount: number }, Log>({
    name: 'payer',
    initialState: [],
    apply: logApply,
    run: async (ctx, input) => {
      await ctx.checkpoint('planned');
      const auth = await ctx.step('authorize', ({ idempotencyKey }) => world.authorize(idempotencyKey, input.amount), {
        compensate: (_a, { stepKey }) => world.voidAuthorization(stepKey),
      });
      await ctx.emit({ type: 'Authorized', data: auth });
      const charge = await ctx.step('charge', () => world.charge(auth));
      await ctx.emit({ type: 'Charged', data: charge });
      return charge;
    },
  });
  return { planner, booker, payer };
}

export function tripGroup(world: AgentsWorld): GroupDefinition {
  const { planner, booker, payer } = agentWorkflows(world);
  return {
    name: 'trip-agents',
    participants: [
      { name: 'planner', workflow: planner, input: { traveller: 'Ada', to: 'OSL' } },
      { name: 'booker', workflow: booker, input: (outputs: Record<string, unknown>) => outputs.planner },
      { name: 'payer', workflow: payer, input: (outputs: Record<string, unknown>) => ({ amount: (outputs.planner as Plan).total }) },
    ],
    onFailure: { rollbackTo: 'planned' },
  };
}

/** Per agent, one line per event; ↶ marks events the group rollback took out of the effective history. */
async function timelineOf(runtime: Runtime, info: GroupInfo): Promise<string[]> {
  const lines: string[] = [];
  for (const p of info.participants) {
    lines.push(`${p.name} (${p.runId}): ${p.status}`);
    if (p.status === 'not_started') continue;
    for (const e of (await runtime.history(p.runId)).events) {
      const d = e.data as Record<string, unknown>;
      const what =
        typeof d?.name === 'string'
          ? d.name
          : typeof d?.step === 'string'
            ? d.step
            : typeof d?.label === 'string'
              ? `"${d.label}"${typeof d.reason === 'string' ? `: ${d.reason}` : ''}`
              : '';
      lines.push(`  ${String(e.version).padStart(3)} ${e.status === 'rolled_back' ? '↶' : ' '} ${e.type.padEnd(22)} ${what}`.trimEnd());
    }
  }
  return lines;
}

export interface AgentsDemoResult {
  groupId: string;
  info: GroupInfo;
  world: AgentsWorld;
  timeline: string[];
  /** Everything above as text, ready to print. */
  text: string;
}

export async function runAgentsDemo(store: EventStore, options: { groupId?: string } = {}): Promise<AgentsDemoResult> {
  const world = new AgentsWorld();
  const runtime = createRuntime({ store });
  const coordinator = createCoordinator(runtime);
  const groupId = options.groupId ?? `trip-${Date.now().toString(36)}`;
  const info = await coordinator.start(tripGroup(world), groupId);
  const timeline = await timelineOf(runtime, info);
  const text = [
    `group ${groupId}: ${info.status}${info.rollback ? ` to "${info.rollback.label}" (${info.rollback.reason})` : ''}`,
    '',
    ...timeline,
    '',
    'what the agents did to the world, in order:',
    ...world.calls.map((c) => `  ${c}`),
  ].join('\n');
  return { groupId, info, world, timeline, text };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log((await runAgentsDemo(await openStore('memory:'))).text);
}
