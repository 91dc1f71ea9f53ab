import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { scenarios } from './scenarios.js';
import { describeTorture } from './torture.js';

/** A smaller set on PostgreSQL: each protocol path once, compensations inline. */
const PATHS = ['rollback-retry', 'compensate-and-fail', 'rollback-then-fail', 'parallel', 'operator-retry', 'rollback-not-resume', 'group'];

describeTorture({
  name: 'PostgreSQL',
  url: () => `${databaseUrl()}?schema=${uniqueSchema()}`,
  scenarios: scenarios.filter((s) => s.hooks === 'inline' && PATHS.includes(s.name)),
  random: 1,
});
