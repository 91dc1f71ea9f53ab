import pg from 'pg';

const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export interface ListenerOptions {
  connectionString: string | undefined;
  /** Shown in pg_stat_activity, so an operator can tell what a LISTEN connection serves. */
  applicationName: string;
  channel: string;
  /** Only notifications with this payload count (several schemas share a channel). */
  payload: string;
  connectTimeoutMs?: number;
  /** Called on every matching notification, and after a reconnect (notifications sent meanwhile are lost). */
  onNotify: () => void;
}

/**
 * A LISTEN connection of its own (a pooled one would be handed to someone else
 * between notifications) that reconnects with backoff when it drops.
 */
export class PgListener {
  readonly #options: ListenerOptions;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delay = RECONNECT_FIRST_MS;
  #closed = false;

  constructor(options: ListenerOptions) {
    this.#options = options;
  }

  /** Connects once; rejects when that fails. Later drops are retried in the background. */
  async start(): Promise<void> {
    const { connectionString, applicationName, channel, payload, connectTimeoutMs, onNotify } = this.#options;
    const client = new pg.Client({ connectionString, application_name: applicationName, connectionTimeoutMillis: connectTimeoutMs });
    const lost = () => {
      if (this.#client !== client) return;
      this.#client = undefined;
      client.end().catch(() => {});
      this.#scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (message) => {
      // A NOTIFY sent on this very connection (a store announcing its appends) comes back to it; the sender woke its own process already.
      if (message.processId === (client as pg.Client & { processID?: number }).processID) return;
      if (message.channel === channel && message.payload === payload) onNotify();
    });
    await client.connect();
    await client.query(`LISTEN ${channel}`);
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#delay = RECONNECT_FIRST_MS;
  }

  /** Runs a statement on the LISTEN connection while it is up (undefined while it is not): it is idle between notifications. */
  query(text: string): Promise<unknown> | undefined {
    return this.#client?.query(text);
  }

  /** The backend process id of the LISTEN connection while it is up: this process's session, which ends when the process dies. */
  sessionPid(): number | undefined {
    return (this.#client as (pg.Client & { processID?: number }) | undefined)?.processID;
  }

  /** Keeps trying in the background; for callers that can run on polling until then. */
  retryInBackground(): void {
    this.#scheduleReconnect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start().then(
        () => this.#options.onNotify(),
        () => {
          this.#delay = Math.min(this.#delay * 2, RECONNECT_MAX_MS);
          this.#scheduleReconnect();
        },
      );
    }, this.#delay);
    this.#timer.unref();
  }
}
