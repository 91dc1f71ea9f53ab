export { type AppOptions, createApp, DEFAULT_BODY_LIMIT, type RewindApp } from './app.js';
export type { Role, Tokens } from './auth.js';
export { HttpConfigError } from './errors.js';
export { DEFAULT_HOST, DEFAULT_PORT, type RunningServer, type ServerOptions, startServer } from './server.js';
