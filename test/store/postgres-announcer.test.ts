import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Announcer } from '../../src/store/postgres/announcer.js';

/*
 * Which PostgreSQL appends carry the NOTIFY that wakes other processes
 * (src/store/postgres/announcer.ts): at most one per window rides in an
 * append's own transaction; what no later append announced gets a NOTIFY of
 * its own once the process is quiet.
 */

const WINDOW = 10;
let sent: number;
let busy: boolean;
let announcer: Announcer;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  sent = 0;
  busy = false;
  announcer = new Announcer({ sendAlone: () => sent++, busy: () => busy, everyMs: WINDOW });
});
afterEach(() => {
  announcer.close();
  vi.useRealTimers();
});

describe('PostgreSQL: which appends announce themselves', () => {
  it('lets the first append of a window carry the NOTIFY, and no other in that window', () => {
    expect(announcer.carry()).toBe(true);
    announcer.settled(true, true);
    vi.advanceTimersByTime(WINDOW - 1);
    expect(announcer.carry()).toBe(false);
    vi.advanceTimersByTime(1);
    expect(announcer.carry()).toBe(true);
    vi.advanceTimersByTime(100);
    expect(sent).toBe(0);
  });

  it('announces appends committed without a NOTIFY once the window ends, by one of its own when nothing else is sent', () => {
    expect(announcer.carry()).toBe(true);
    announcer.settled(true, true);
    expect(announcer.carry()).toBe(false);
    announcer.settled(false, true);
    vi.advanceTimersByTime(WINDOW - 1);
    expect(sent).toBe(0);
    vi.advanceTimersByTime(1);
    expect(sent).toBe(1);
    vi.advanceTimersByTime(100);
    expect(sent).toBe(1);
  });

  it('leaves what is owed to the next append while appends are in flight or waiting', () => {
    announcer.carry();
    announcer.settled(true, true);
    announcer.carry();
    announcer.settled(false, true);
    busy = true;
    vi.advanceTimersByTime(WINDOW);
    expect(sent).toBe(0);
    // The next append carries it.
    expect(announcer.carry()).toBe(true);
    announcer.settled(true, true);
    busy = false;
    vi.advanceTimersByTime(100);
    expect(sent).toBe(0);
  });

  it('announces again when an append that carried what was owed rolled back', () => {
    announcer.carry();
    announcer.settled(true, true);
    announcer.carry();
    announcer.settled(false, true);
    busy = true;
    vi.advanceTimersByTime(WINDOW);
    expect(announcer.carry()).toBe(true);
    announcer.settled(true, false);
    busy = false;
    vi.advanceTimersByTime(WINDOW - 1);
    expect(sent).toBe(0);
    vi.advanceTimersByTime(1);
    expect(sent).toBe(1);
  });

  it('sends nothing after close', () => {
    announcer.carry();
    announcer.settled(false, true);
    announcer.close();
    vi.advanceTimersByTime(100);
    expect(sent).toBe(0);
  });
});
