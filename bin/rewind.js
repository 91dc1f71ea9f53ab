#!/usr/bin/env node
// The package ships compiled code in dist/ (built when it is packed, by the prepack script; installing it runs
// no script); this file only hands over to it. In a clone of the repository, `npm run build` builds dist/.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/surfaces/cli/bin.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('rewind: the compiled CLI (dist/) is missing; in a clone of the repository, run `npm run build` first\n');
  process.exit(1);
}
await import(cli.href);
