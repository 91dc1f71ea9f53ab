import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { scenarios } from './scenarios.js';
import { describeTorture } from './torture.js';

/**
 * A smaller set on PostgreSQL, compensations inline: a rollback that fails the
 * run after, parallel steps with a failure among them, an operator's retry of
 * a blocked compensation, and a rollback of a run left with a step open.
 */
const PATHS = ['rollback-then-fail', 'parallel', 'operator-retry', 'rollback-not-resume'];

describeTorture({
  name: 'PostgreSQL',
  url: () => `${databaseUrl()}?schema=${uniqueSchema()}`,
  scenarios: scenarios.filter((s) => s.hooks === 'inline' && PATHS.includes(s.name)),
  random: 1,
});
