import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { describeEventStoreConformance } from '../../src/testing/conformance.js';
import { openTestPostgresStore } from '../support/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'rewind-conformance-'));
let files = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeEventStoreConformance('memory', () => openStore('memory:'));
describeEventStoreConformance('sqlite', () => openStore(`sqlite:${join(dir, `store-${++files}.db`)}`));
describeEventStoreConformance('postgres', () => openTestPostgresStore());
