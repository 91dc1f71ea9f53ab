import { join } from 'node:path';
import { scenarios } from './scenarios.js';
import { describeTorture } from './torture.js';

describeTorture({
  name: 'SQLite, compensations inline',
  url: (dir) => `sqlite:${join(dir, 'runs.db')}`,
  scenarios: scenarios.filter((s) => s.hooks === 'inline'),
  random: 1,
});
