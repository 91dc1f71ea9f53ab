import { databaseUrl, uniqueSchema } from '../support/postgres.js';
import { scenarios } from './scenarios.js';
import { describeTorture } from './torture.js';

/**
 * A smaller set on PostgreSQL, compensations inline: a rollback that fails the
 * run after, parallel steps with a failure among them, an operator's retry of
 * a blocked compensation, a rollback of a run left with a step open, a
 * reviewer's rejection (a wait, a signal and a trigger), and values written
 * with the next step's start and sent with the effects.
 */
const PATHS = ['rollback-then-fail', 'parallel', 'operator-retry', 'rollback-not-resume', 'approval-rejected', 'values'];

describeTorture({
  name: 'PostgreSQL',
  url: () => `${databaseUrl()}?schema=${uniqueSchema()}`,
  scenarios: scenarios.filter((s) => s.hooks === 'inline' && PATHS.includes(s.name)),
  random: 1,
});
