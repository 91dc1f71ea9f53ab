import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { StoreConfigError, ValidationError } from '../../src/events/errors.js';
import { openStore } from '../../src/store/open.js';

describe('openStore', () => {
  it.each(['', 'mysql://localhost/db', 'sqlite:', 'file:./x.db'])(
    'refuses %j with a StoreConfigError that says what works',
    async (url) => {
      const error = await openStore(url).catch((e) => e);
      expect(error).toBeInstanceOf(StoreConfigError);
      expect(error.hint).toMatch(/sqlite:|memory:/);
    },
  );

  it('refuses a PostgreSQL server that does not answer, in bounded time, without showing the password', async () => {
    // A loopback listener that accepts and never speaks: what a black-holed server looks like to a client.
    const silent = createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const error = await openStore(`postgres://app:s3cret@127.0.0.1:${port}/db`, { connectTimeoutMs: 500 }).catch((e) => e);
      expect(error).toBeInstanceOf(StoreConfigError);
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).not.toContain('s3cret');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      silent.close();
    }
  });

  it('refuses a refused connection at once', async () => {
    const error = await openStore('postgres://app:s3cret@127.0.0.1:1/db').catch((e) => e);
    expect(error).toBeInstanceOf(StoreConfigError);
    expect(error.message).not.toContain('s3cret');
  });

  it('takes a configurable event size limit', async () => {
    const store = await openStore('memory:', { maxEventBytes: 100 });
    await store.append('s', [{ type: 'A', data: { text: 'x'.repeat(50) } }]);
    const error = await store.append('s', [{ type: 'A', data: { text: 'x'.repeat(100) } }]).catch((e) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toContain('over the limit of 100');
    expect(await store.streamVersion('s')).toBe(1);
    // The limit is in UTF-8 bytes: 30 euro signs are 90 bytes, 30 x's are 30.
    await store.append('s', [{ type: 'A', data: { text: 'x'.repeat(30) } }]);
    const wide = await store.append('s', [{ type: 'A', data: { text: '€'.repeat(30) } }]).catch((e) => e);
    expect(wide).toBeInstanceOf(ValidationError);
    expect(wide.message).toMatch(/is 1\d\d bytes of data and metadata, over the limit of 100/);
    expect(await store.streamVersion('s')).toBe(2);
    await store.close();
    await expect(openStore('memory:', { maxEventBytes: 0 })).rejects.toBeInstanceOf(StoreConfigError);
  });
});
