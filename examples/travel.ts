/**
 * A travel agent: book a flight, charge the card, book a hotel. The first
 * hotel is full, so the run rolls back to its "planned" checkpoint (the card
 * is refunded and the flight cancelled, newest first) and the agent, which
 * can see that it runs after a rollback, books the next hotel. A fare above
 * LARGE_PAYMENT waits for a person's approval before the card is charged.
 * `rewind demo` runs it.
 *
 *   npx tsx examples/travel.ts                               (in this repository)
 *   node node_modules/rewind-runtime/dist/examples/travel.js   (from the installed package)
 */
import { createRuntime, defineWorkflow, type EventStore, openStore, type RunInfo } from 'rewind-runtime';
import { z } from 'zod';

/** What a trip needs; POST /runs and runtime.start refuse anything else before a step runs. */
export const TripInput = z.object({
  traveller: z.string().min(1),
  from: z.string().min(1),
  to: z.string().min(1),
  /** In order of preference: after each rollback the agent tries the next one. */
  hotels: z.array(z.string().min(1)).min(1),
  /** The fare in euros; above LARGE_PAYMENT a person must approve the charge. */
  fare: z.number().positive().optional(),
});

/** Charges above this (euros) wait for a person's approval: `rewind approve <run> large-payment`. */
export const LARGE_PAYMENT = 1000;
export type TripInput = z.infer<typeof TripInput>;

export interface TripState {
  flight?: string;
  payment?: string;
  hotel?: string;
  triedHotels: string[];
}

type TripEvent =
  | { type: 'FlightBooked'; data: { booking: string } }
  | { type: 'CardCharged'; data: { payment: string } }
  | { type: 'HotelChosen'; data: { hotel: string } }
  | { type: 'HotelBooked'; data: { booking: string } };

/** Fake external services, keyed by idempotency key like Stripe's or an airline's booking API. */
export class TravelWorld {
  readonly flights = new Map<string, 'booked' | 'cancelled'>();
  readonly payments = new Map<string, 'charged' | 'refunded'>();
  readonly hotels = new Map<string, string>();
  readonly full = new Set<string>();
  constructor(full: string[] = ['Grand Hotel']) {
    for (const h of full) this.full.add(h);
  }
  bookFlight(key: string): string {
    if (!this.flights.has(key)) this.flights.set(key, 'booked');
    return `FL-${key.split(':').slice(-2).join('-')}`;
  }
  cancelFlight(key: string): void {
    this.flights.set(key, 'cancelled');
  }
  charge(key: string): string {
    if (!this.payments.has(key)) this.payments.set(key, 'charged');
    return `PAY-${key.split(':').slice(-2).join('-')}`;
  }
  refund(key: string): void {
    this.payments.set(key, 'refunded');
  }
  bookHotel(key: string, hotel: string): string {
    if (this.full.has(hotel)) throw new Error(`${hotel} is full`);
    this.hotels.set(key, hotel);
    return `HT-${hotel.replace(/\W+/g, '')}`;
  }
  cancelHotel(key: string): void {
    this.hotels.delete(key);
  }
}

export function travelWorkflow(world: TravelWorld) {
  return defineWorkflow<TripInput, TripState, TripEvent, TripState>({
    name: 'travel',
    version: '1',
    input: TripInput,
    initialState: { triedHotels: [] },
    apply: (s, e) => {
      switch (e.type) {
        case 'FlightBooked':
          return { ...s, flight: e.data.booking };
        case 'CardCharged':
          return { ...s, payment: e.data.payment };
        case 'HotelChosen':
          return { ...s, triedHotels: [...s.triedHotels, e.data.hotel] };
        case 'HotelBooked':
          return { ...s, hotel: e.data.booking };
      }
    },
    // A failed booking rolls back to the plan and runs the agent again.
    onFailure: { rollbackTo: 'planned', after: 'retry' },
    // Declared by step name rather than inline: a rollback asked for from outside (CLI, API, another process)
    // then reads only the events after the checkpoint instead of replaying the run to get the closures back.
    compensations: {
      'book-flight': (_booking, { stepKey }) => world.cancelFlight(stepKey),
      'charge-card': (_payment, { stepKey }) => world.refund(stepKey),
      'book-hotel': (_booking, { stepKey }) => world.cancelHotel(stepKey),
    },
    verifications: {
      'book-flight': (_booking, { stepKey }) => world.flights.get(stepKey) === 'cancelled',
    },
    run: async (ctx, input) => {
      await ctx.checkpoint('planned');
      const flight = await ctx.step('book-flight', ({ idempotencyKey }) => world.bookFlight(idempotencyKey));
      await ctx.emit({ type: 'FlightBooked', data: { booking: flight } });
      if ((input.fare ?? 0) > LARGE_PAYMENT) {
        // A person looks at large charges first; a rejection cancels the flight (rolls back to the plan) and ends the trip.
        await ctx.approve('large-payment', {
          details: { traveller: input.traveller, fare: input.fare },
          onFailure: { rollbackTo: 'planned', after: 'fail' },
        });
      }
      const payment = await ctx.step('charge-card', ({ idempotencyKey }) => world.charge(idempotencyKey));
      await ctx.emit({ type: 'CardCharged', data: { payment } });
      // After a rollback the agent knows which hotels failed (ctx.rollbacks) and picks the next one.
      const hotel = input.hotels[Math.min(ctx.rollbacks.length, input.hotels.length - 1)] as string;
      await ctx.emit({ type: 'HotelChosen', data: { hotel } });
      const booking = await ctx.step('book-hotel', ({ idempotencyKey }) => world.bookHotel(idempotencyKey, hotel), {
        retry: { attempts: 2, initialDelayMs: 10 },
      });
      await ctx.emit({ type: 'HotelBooked', data: { booking } });
      return ctx.state;
    },
  });
}

export interface TravelDemoResult {
  runId: string;
  info: RunInfo<TripState, TripState>;
  world: TravelWorld;
}

export async function runTravelDemo(store: EventStore, options: { runId?: string } = {}): Promise<TravelDemoResult> {
  const world = new TravelWorld();
  const runtime = createRuntime({ store });
  const runId = options.runId ?? `travel-${Date.now()}`;
  const info = await runtime.start(
    travelWorkflow(world),
    { traveller: 'Ada', from: 'LHR', to: 'OSL', hotels: ['Grand Hotel', 'Harbour Inn'] },
    { runId },
  );
  return { runId, info, world };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const store = await openStore('memory:');
  const { runId, info } = await runTravelDemo(store);
  // Every event, the undone ones marked ↶: they stay in the log.
  const { events } = await createRuntime({ store }).history(runId);
  for (const e of events) console.log(`${String(e.version).padStart(3)} ${e.status === 'rolled_back' ? '↶' : ' '} ${e.type}`);
  console.log(`\n${runId}: ${info.status}`, info.output);
  await store.close();
}
