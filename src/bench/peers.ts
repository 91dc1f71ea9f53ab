/*
 * The parts of the peers' APIs the store sections use. The peers are not
 * dependencies of the package nor of the repository's tests: `npm run bench`
 * installs them from bench/package.json and loads them with optional(), so
 * their shapes are written here instead of imported.
 */

type PeerEvent = { type: string; data: unknown };

/** Emmett's event store, as its SQLite and PostgreSQL packages return it. */
export interface EmmettEventStore {
  appendToStream(streamId: string, events: PeerEvent[], options?: { expectedStreamVersion?: bigint }): Promise<unknown>;
  readStream(streamId: string): Promise<unknown>;
  aggregateStream<S>(
    streamId: string,
    options: { evolve: (state: S, event: { data: unknown }) => S; initialState: () => S },
  ): Promise<unknown>;
}

/** `@event-driven-io/emmett-sqlite`. */
export interface EmmettSqlite {
  getSQLiteEventStore(options: { fileName: string }): EmmettEventStore;
  sqliteConnection(options: { fileName: string }): {
    querySingle<T>(sql: string): Promise<T | null>;
    close(): void;
  };
}

/** `@event-driven-io/emmett-postgresql`. */
export interface EmmettPostgres {
  getPostgreSQLEventStore(connectionString: string): EmmettEventStore & { close(): Promise<void> };
}
