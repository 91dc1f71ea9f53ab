/** The server's defaults, in a module of their own so the CLI can show them without loading the server. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 4600;
/** Largest accepted request body, in bytes. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;
