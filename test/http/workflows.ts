import { createRuntime, defineWorkflow, type Runtime } from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';

/** What the trip workflow did to the outside world, and switches a test flips to make it misbehave. */
export class World {
  readonly undone: string[] = [];
  /** The hotel's compensation throws while this is true. */
  hotelUndoBroken = false;
  /** The hotel's compensation waits for this before it returns, when set. */
  hotelUndoGate: Promise<void> | undefined;
  /** The flight step waits for this (or its abort signal) before it returns, when set. */
  flightGate: Promise<void> | undefined;
}

export interface TripState {
  booked: string[];
}

export function tripWorkflow(world: World) {
  return defineWorkflow<{ hotel: string }, TripState>({
    name: 'trip',
    initialState: { booked: [] },
    apply: (state, event) => (event.type === 'Booked' ? { booked: [...state.booked, event.data as string] } : state),
    run: async (ctx, input) => {
      await ctx.checkpoint('planned');
      const flight = await ctx.step(
        'book-flight',
        async ({ signal }) => {
          await Promise.race([world.flightGate, aborted(signal)]);
          return 'FL-1';
        },
        { compensate: () => void world.undone.push('flight') },
      );
      await ctx.emit({ type: 'Booked', data: flight });
      const hotel = await ctx.step('book-hotel', () => input.hotel, {
        compensate: async () => {
          await world.hotelUndoGate;
          if (world.hotelUndoBroken) throw new Error('the hotel API is down');
          world.undone.push('hotel');
        },
        compensationRetry: { attempts: 1 },
      });
      await ctx.emit({ type: 'Booked', data: hotel });
      return { flight, hotel };
    },
  });
}

export function tripRuntime(world: World) {
  return (store: EventStore): Runtime => createRuntime({ store, workflows: [tripWorkflow(world)], compensationRetry: { attempts: 1 } });
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
