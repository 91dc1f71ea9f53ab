/**
 * Test files run at a time (vitest's maxWorkers). Most wait on fsyncs, child
 * processes and PostgreSQL more than on the CPU: three keep two cores busy.
 * The PostgreSQL setup starts a server for each.
 */
export const TEST_WORKERS = 3;
