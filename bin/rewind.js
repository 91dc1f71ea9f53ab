#!/usr/bin/env node
// The package ships compiled code in dist/ (built by `npm install` through the
// prepare script); this file only hands over to it.
await import('../dist/src/surfaces/cli/bin.js');
