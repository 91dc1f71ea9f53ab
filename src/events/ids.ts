import { randomFillSync } from 'node:crypto';

// Random bytes are drawn a pool at a time: one call into the CSPRNG per 256 ids instead of one per id.
const pool = Buffer.alloc(16 * 256);
let offset = pool.length;

/**
 * UUID version 7 (RFC 9562): a millisecond timestamp then random bits. Ids made
 * in order sort in order, which keeps the primary-key index append-only.
 */
export function uuidv7(now: number = Date.now()): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + 16);
  offset += 16;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
