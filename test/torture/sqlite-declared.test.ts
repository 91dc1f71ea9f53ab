import { join } from 'node:path';
import { scenarios } from './scenarios.js';
import { describeTorture } from './torture.js';

describeTorture({
  name: 'SQLite, compensations declared',
  url: (dir) => `sqlite:${join(dir, 'runs.db')}`,
  scenarios: scenarios.filter((s) => s.hooks === 'declared'),
  random: 1,
});
