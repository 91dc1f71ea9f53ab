import type { RawRow, StorageBackend } from '../types.js';

/** Rows read per query while walking the log. */
export const SCAN_PAGE = 5000;

/** Every row with from ≤ position ≤ to, in position order, as stored, a page at a time. */
export async function* logRows(backend: StorageBackend, from: number, to: number): AsyncGenerator<RawRow> {
  for (let next = from; next <= to; ) {
    const rows = await backend.scanLog(next, to, SCAN_PAGE);
    yield* rows;
    if (rows.length < SCAN_PAGE) return;
    next = (rows[rows.length - 1] as RawRow).position + 1;
  }
}

/** One stream's rows in version order, as stored, a page at a time. */
export async function* streamRows(backend: StorageBackend, streamId: string): AsyncGenerator<RawRow> {
  for (let next = 1; ; ) {
    const rows = await backend.scanStream(streamId, next, SCAN_PAGE);
    yield* rows;
    const version = rows[rows.length - 1]?.version;
    // A version of the wrong type cannot be paged past; verification reports it.
    if (rows.length < SCAN_PAGE || typeof version !== 'number') return;
    next = version + 1;
  }
}
