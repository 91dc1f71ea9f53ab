/**
 * One reused buffer for the bytes each hash is taken over: hashing a log
 * hashes several times per event, and a fresh zero-filled buffer each time
 * cost more than the hashing. Callers fill it and hash it at once (no await
 * in between), so nobody else writes it meanwhile.
 */
let shared = Buffer.allocUnsafe(4096);

/** The shared buffer, at least `size` bytes long. */
export function scratch(size: number): Buffer {
  if (shared.length < size) shared = Buffer.allocUnsafe(Math.max(size, shared.length * 2));
  return shared;
}

/** Writes a 32-byte hash given in hex at `offset`; what is not hex reads as zeros, as in a fresh buffer, never as leftovers. */
export function writeHash(buffer: Buffer, hex: string, offset: number): void {
  const written = buffer.write(hex, offset, 32, 'hex');
  if (written < 32) buffer.fill(0, offset + written, offset + 32);
}
