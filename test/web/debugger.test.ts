// biome-ignore-all lint/performance/useDomNodeTextContent: these are Playwright Locator.innerText() calls, not DOM properties
// The web debugger end to end, in a real headless Chromium (Debian's package,
// driven by playwright-core; never a downloaded browser) against the real
// HTTP server over a SQLite file seeded with the demo run.
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleWorkflows } from '../../examples/index.js';
import { runTravelDemo } from '../../examples/travel.js';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { createRuntime, defineReaction, defineWorkflow, ReactionEvents, type Runtime, runStreamId } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { type RunningServer, startServer } from '../../src/surfaces/http/server.js';

const CHROMIUM = process.env.REWIND_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_DIST = join(ROOT, 'dist/web');
// dist/web is built (or rebuilt when older than its sources) by test/support/build-global-setup.ts.
/** Screenshots of the main views: into docs/screenshots with REWIND_SCREENSHOTS=1, else next to the test's database. */
const SHOTS_TO_DOCS = process.env.REWIND_SCREENSHOTS === '1';
const RUN = 'trip-demo';
const OTHER = 'trip-b';
const STUCK = 'payout-7';
const FAILED = 'report-3';
const WAITING = 'refund-9';

/** A payout whose refund fails until the bank is back: its rollback gets stuck and needs attention. */
const bank = { refunds: true };
const payout = defineWorkflow<{ to: string; cents: number }, { paid: string[] }, { type: 'Paid'; data: { to: string } }>({
  name: 'payout',
  version: '1',
  initialState: { paid: [] },
  apply: (s, e) => (e.type === 'Paid' ? { paid: [...s.paid, e.data.to] } : s),
  onFailure: { rollbackTo: 'ready', after: 'fail' },
  run: async (ctx, input) => {
    await ctx.checkpoint('ready');
    await ctx.step('pay', () => `TX-${input.to}`, {
      compensate: () => {
        if (!bank.refunds) throw new Error('bank unavailable');
      },
    });
    await ctx.emit({ type: 'Paid', data: { to: input.to } });
    await ctx.step('notify', () => {
      throw new Error('mail server refused the message');
    });
  },
});
/** A run that simply fails. */
const report = defineWorkflow<{ month: string }, Record<string, never>>({
  name: 'report',
  version: '2',
  initialState: {},
  apply: (s) => s,
  onFailure: 'fail',
  run: async (ctx) => {
    await ctx.step('fetch-figures', () => {
      throw new Error('warehouse timeout after 30 s');
    });
  },
});

/** A refund that waits for a person's approval before it pays. */
const refund = defineWorkflow<{ cents: number }, null>({
  name: 'refund',
  initialState: null,
  apply: (s) => s,
  run: async (ctx, input) => {
    await ctx.approve('large-refund', { details: { cents: input.cents } });
    return ctx.step('pay-back', () => `RF-${input.cents}`);
  },
});

/** A reaction that mails each invoice, and cannot while the mail server is down: it parks on that invoice. */
const mailServer = { up: true };
const mailed: string[] = [];
const mailer = defineReaction({
  name: 'invoice-mailer',
  on: { types: ['InvoiceIssued'] },
  retry: { attempts: 1, initialDelayMs: 1 },
  act: (e) => {
    const { to } = e.data as { to: string };
    if (!mailServer.up) throw new Error(`the mail server refused the invoice for ${to}`);
    mailed.push(to);
  },
});

let dir: string;
let store: EventStore;
let runtime: Runtime;
let server: RunningServer;
let browser: Browser;
let page: Page;
/** What the browser refused under the debugger's Content-Security-Policy, all tests long. */
const cspViolations: string[] = [];

async function shot(name: string): Promise<void> {
  const into = SHOTS_TO_DOCS ? join(ROOT, 'docs/screenshots') : join(dir, 'screenshots');
  mkdirSync(into, { recursive: true });
  // The toasts of earlier steps would hide part of the view.
  await page.evaluate(() => document.querySelector('.toasts')?.replaceChildren());
  await page.screenshot({ path: join(into, `${name}.png`) });
}

const row = (version: number) => page.locator(`[data-testid=timeline] li[data-version="${version}"]`);
const selectedVersion = async () => Number(await page.locator('[data-testid=timeline] li[aria-current=true]').getAttribute('data-version'));

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the browser tests need Chromium at ${CHROMIUM} and it is missing: install it with \`apt-get install chromium\` (CI's .ci/run does), or point REWIND_CHROMIUM at one`,
    );
  }
  dir = await mkdtemp(join(tmpdir(), 'rewind-web-'));
  store = await openStore(`sqlite:${join(dir, 'rewind.db')}`);
  await runTravelDemo(store, { runId: RUN });
  runtime = createRuntime({
    store,
    workflows: [...exampleWorkflows(), payout, report, refund],
    reactions: [mailer],
    compensationRetry: { attempts: 2, initialDelayMs: 1 },
  });
  await runtime.start(report, { month: '2026-10' }, { runId: FAILED });
  bank.refunds = false;
  await runtime.start(payout, { to: 'ada', cents: 4200 }, { runId: STUCK });
  await runtime.start(refund, { cents: 90_000 }, { runId: WAITING });
  server = await startServer({ store, runtime, port: 0, staticDir: WEB_DIST, log: () => {} });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  page.setDefaultTimeout(10_000);
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) cspViolations.push(message.text());
  });
  // Nothing may come from anywhere but the server under test.
  await page.route('**/*', (route) =>
    route.request().url().startsWith(server.url) || route.request().url().startsWith('data:') ? route.continue() : route.abort(),
  );
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await runtime?.close();
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('web debugger in headless Chromium', () => {
  it('lists runs with status and workflow, filters them, and shows new runs live', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    const demo = page.locator(`tr[data-run="${RUN}"]`);
    await expect.poll(() => demo.count()).toBe(1);
    expect(await demo.locator('.pill').getAttribute('data-status')).toBe('completed');
    expect(await demo.innerText()).toContain('travel');
    await expect.poll(() => page.locator('[data-testid=live]').innerText()).toContain('live');

    // A run started elsewhere shows up without a reload: the live feed.
    await runTravelDemo(store, { runId: OTHER });
    await expect.poll(() => page.locator(`tr[data-run="${OTHER}"]`).count()).toBe(1);

    await page.selectOption('select[aria-label=status]', 'failed');
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(1);
    expect(await page.locator(`tr[data-run="${FAILED}"] .pill`).getAttribute('data-status')).toBe('failed');
    await page.selectOption('select[aria-label=status]', '');
    expect(await page.locator(`tr[data-run="${STUCK}"] .pill`).getAttribute('data-status')).toBe('needs_attention');
    await page.selectOption('select[aria-label=workflow]', 'travel');
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(2);
    await page.selectOption('select[aria-label=workflow]', '');
    await page.fill('input[aria-label="search run id"]', 'demo');
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(1);
    await page.fill('input[aria-label="search run id"]', '');
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(5);
    expect(await page.locator(`tr[data-run="${WAITING}"] .pill`).getAttribute('data-status')).toBe('waiting');
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    await shot('runs-list');
    expect(errors).toEqual([]);
  });

  it('opens the demo run, steps through its timeline with the keyboard and shows the rollback', async () => {
    await page.locator(`tr[data-run="${RUN}"]`).click();
    await expect.poll(() => page.locator('[data-testid=timeline] li').count()).toBe(31);
    expect(await page.locator('[data-testid=run-id]').innerText()).toBe(RUN);
    // Opens on the newest event.
    await expect.poll(selectedVersion).toBe(31);

    await page.keyboard.press('g');
    await expect.poll(selectedVersion).toBe(1);
    for (let i = 0; i < 3; i++) await page.keyboard.press('j');
    await expect.poll(selectedVersion).toBe(4);
    await page.keyboard.press('ArrowDown');
    await expect.poll(selectedVersion).toBe(5);
    await page.keyboard.press('k');
    await expect.poll(selectedVersion).toBe(4);
    await page.keyboard.press('ArrowUp');
    await expect.poll(selectedVersion).toBe(3);
    expect(page.url()).toContain(`#/runs/${RUN}/v/3`);
    // n jumps to the next checkpoint, rollback or failure: the first failed hotel booking.
    await page.keyboard.press('n');
    await expect.poll(selectedVersion).toBe(11);
    expect(await page.locator('[data-testid=state-version]').innerText()).toBe('v11');

    // The rollback: v3..v19 undone but present and marked, v20 the marker, the checkpoint flagged.
    const undone = page.locator('[data-testid=timeline] li[data-status=rolled_back]');
    expect(await undone.count()).toBe(17);
    expect(await undone.first().getAttribute('data-version')).toBe('3');
    expect(await undone.last().getAttribute('data-version')).toBe('19');
    expect(await row(9).getAttribute('class')).toContain('undone');
    expect(await row(9).innerText()).toContain('undone by v20');
    expect(await row(20).getAttribute('data-status')).toBe('marker');
    expect(await row(20).innerText()).toMatch(/rolled back to “planned” \(v2\)/);
    expect(await row(2).innerText()).toContain('planned');
    expect(await row(21).getAttribute('data-status')).toBe('effective');
    expect(await page.locator('.rb-chip').innerText()).toContain('17 events undone');
    // A step's end shows how long it took.
    expect(await row(22).locator('.dur').innerText()).toMatch(/\d+ ms/);
    // Counts agree with their nouns.
    expect(await page.locator('.pane-head .dim').first().innerText()).toBe('1 checkpoint · 1 rollback · 17 undone');
  });

  it('moves the selection with the URL: a permalink pasted into the tab, Back and Forward', async () => {
    const go = (version: number) =>
      page.evaluate((hash) => {
        location.hash = hash;
      }, `#/runs/${RUN}/v/${version}`);
    await go(25);
    await expect.poll(selectedVersion).toBe(25);
    expect(await page.locator('[data-testid=state-version]').innerText()).toBe('v25');
    await go(7);
    await expect.poll(selectedVersion).toBe(7);
    await page.goBack();
    await expect.poll(selectedVersion).toBe(25);
    await page.goForward();
    await expect.poll(selectedVersion).toBe(7);
    // Stepping afterwards replaces the entry rather than adding one, and the URL keeps up.
    await page.keyboard.press('j');
    await expect.poll(selectedVersion).toBe(8);
    expect(page.url()).toContain(`#/runs/${RUN}/v/8`);
    // Back leaves that (replaced) entry for the one before it.
    await page.goBack();
    await expect.poll(selectedVersion).toBe(25);
    // A version past the end selects the last event.
    await go(999);
    await expect.poll(selectedVersion).toBe(31);
  });

  it('gives a summary the width of its row up to the time, when the row has no duration', async () => {
    const measure = (version: number) =>
      row(version).evaluate((li) => {
        const box = (selector: string) => (li.querySelector(selector) as HTMLElement).getBoundingClientRect();
        return { sum: Math.round(box('.sum').width), gap: Math.round(box('.time').left - box('.sum').right) };
      });
    // RunCompleted, no duration: the summary reaches the time column.
    const end = await measure(31);
    expect(end.gap).toBe(0);
    expect(end.sum).toBeGreaterThan(380);
    // A step's end keeps room for its duration.
    const step = await measure(22);
    expect(step.gap).toBeGreaterThan(40);
  });

  it('shows the state at a selected event, the change from the one before, and the raw envelope with its hash', async () => {
    await row(23).click();
    await expect.poll(selectedVersion).toBe(23);
    expect(await page.locator('[data-testid=state-version]').innerText()).toBe('v23');
    const state = page.locator('[data-testid=state]');
    expect(await state.innerText()).toContain('FL-book-flight-r1');
    // v23 is FlightBooked: the workflow state gains its flight, and exactly that is highlighted as new.
    const added = state.locator('[data-mark=added]');
    await expect.poll(() => added.count()).toBeGreaterThan(0);
    expect((await added.allInnerTexts()).join('\n')).toContain('FL-book-flight-r1');
    expect(await state.locator('[data-mark=removed], [data-mark=changed]').count()).toBe(0);
    expect(await page.locator('[data-testid=changes]').innerText()).toContain('flight');
    const [stored] = await store.read(runStreamId(RUN), { from: 23, to: 23 });
    expect(await page.locator('[data-testid=hash]').innerText()).toBe(stored?.hash);
    expect(await page.locator('[data-testid=envelope]').innerText()).toContain(stored?.id as string);

    // A rolled-back event: its state as it was then, and a note that it was undone.
    await row(9).click();
    expect(await page.locator('.undone-note').innerText()).toContain('rolled back by v20');
    expect(await state.innerText()).toContain('Grand Hotel');
    await row(27).click();
    await page.locator('[data-testid=detail]').hover();
    await shot('run-timeline');
  });

  it('rolls the run back from the UI after confirmation, and the new events appear in the page and in the log', async () => {
    const before = await store.streamVersion(runStreamId(RUN));
    await page.locator('[data-action=rollback]').click();
    const dialog = page.locator('.modal');
    await dialog.waitFor();
    // Nothing happens until it is confirmed with a reason.
    expect(await dialog.locator('[data-testid=confirm]').isDisabled()).toBe(true);
    await dialog.locator('select[name=to]').selectOption('planned');
    await dialog.locator('input[name=reason]').fill('rolled back from the browser test');
    await shot('rollback-dialog');
    await dialog.locator('[data-testid=confirm]').click();
    await dialog.waitFor({ state: 'detached' });

    // In the log: RollbackRequested, the compensations, and the RolledBack marker with our reason.
    await expect
      .poll(async () => (await store.read(runStreamId(RUN))).some((e) => e.version > before && e.type === 'RolledBack'))
      .toBe(true);
    const events = await store.read(runStreamId(RUN));
    const added = events.filter((e) => e.version > before);
    expect(added[0]?.type).toBe('RollbackRequested');
    expect(added.map((e) => e.type)).toContain('CompensationCompleted');
    const marker = added.find((e) => e.type === 'RolledBack');
    expect(marker?.data).toMatchObject({ label: 'planned', targetVersion: 2, reason: 'rolled back from the browser test' });

    // In the page: every new event, the newest selected, the run rolled back, v21..v31 now undone too.
    await expect.poll(() => page.locator('[data-testid=timeline] li').count()).toBe(events.length);
    await expect.poll(() => page.locator('.title-line .pill').getAttribute('data-status')).toBe('rolled_back');
    expect(await row(marker?.version as number).getAttribute('data-status')).toBe('marker');
    expect(await row(25).getAttribute('data-status')).toBe('rolled_back');
    expect(await row(25).innerText()).toContain(`undone by v${marker?.version}`);
    await expect.poll(() => selectedVersion()).toBe(events.length);
    expect(await page.locator('.rb-chip').count()).toBe(2);
    await page.keyboard.press('G');
    await shot('run-after-rollback');
  });

  it('compares two runs side by side: the first divergent event and the state diff', async () => {
    await page.goto(`${server.url}/#/diff/${RUN}/${OTHER}`);
    const verdict = page.locator('[data-testid=verdict]');
    await expect.poll(() => verdict.innerText()).toContain('share 2 effective events');
    expect(await verdict.innerText()).toContain('the end');
    expect(await page.locator('.timeline.cmp li.diverge').count()).toBe(2);
    // A stopped at its checkpoint; B went on and booked everything.
    const b = page.locator('[data-testid=state-b]');
    expect(await b.locator('[data-mark]').count()).toBeGreaterThan(0);
    expect(await b.innerText()).toContain('HT-HarbourInn');
    await shot('diff');
  });

  it('follows a run live: events another client causes appear without a reload', async () => {
    await page.goto(`${server.url}/#/runs/${OTHER}`);
    await expect.poll(() => page.locator('[data-testid=timeline] li').count()).toBe(31);
    await expect.poll(() => page.locator('[data-testid=live]').innerText()).toContain('live');
    // Someone else (the CLI, a script) rolls it back through the API; the page did nothing.
    const response = await fetch(`${server.url}/runs/${OTHER}/rollback`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ to: 'planned', reason: 'from another client' }),
    });
    expect(response.status).toBe(200);
    const head = await store.streamVersion(runStreamId(OTHER));
    expect(head).toBeGreaterThan(31);
    // Pushed, not polled: on a loaded machine the feed can take longer than expect.poll's default second.
    const live = { timeout: 5_000 };
    await expect.poll(() => page.locator('[data-testid=timeline] li').count(), live).toBe(head);
    await expect.poll(() => page.locator('.title-line .pill').getAttribute('data-status'), live).toBe('rolled_back');
    await expect.poll(() => selectedVersion(), live).toBe(head);
  });

  it('retries a stuck compensation from the UI after confirmation', async () => {
    await page.goto(`${server.url}/#/runs/${STUCK}`);
    await expect.poll(() => page.locator('.title-line .pill').getAttribute('data-status')).toBe('needs_attention');
    expect(await page.locator('.attention').innerText()).toContain('bank unavailable');
    const retry = page.locator('[data-action=retry]');
    expect(await retry.isDisabled()).toBe(false);
    await shot('run-needs-attention');
    bank.refunds = true;
    await retry.click();
    await page.locator('.modal [data-testid=confirm]').click();
    await expect.poll(async () => (await store.read(runStreamId(STUCK))).map((e) => e.type)).toContain('CompensationRetried');
    await expect.poll(() => page.locator('.title-line .pill').getAttribute('data-status')).toBe('failed');
    const head = await store.streamVersion(runStreamId(STUCK));
    await expect.poll(() => page.locator('[data-testid=timeline] li').count()).toBe(head);
    expect(await retry.isDisabled()).toBe(true);
  });

  it('shows what a run waits for, and approves it from the UI with the reviewer named', async () => {
    await page.goto(`${server.url}/#/runs/${WAITING}`);
    await expect.poll(() => page.locator('.title-line .pill').getAttribute('data-status')).toBe('waiting');
    const waiting = page.locator('[data-testid=waiting]');
    expect(await waiting.innerText()).toMatch(/waiting for approval\s+large-refund\s+\{"cents":90000\}/);
    await page.locator('[data-action=reject]').click();
    // A rejection needs a reason: the confirm button stays disabled without one.
    expect(await page.locator('.modal [data-testid=confirm]').isDisabled()).toBe(true);
    await page.locator('.modal [data-testid=cancel]').click();
    await page.locator('[data-action=approve]').click();
    await page.locator('.modal input[name=actor]').fill('ana');
    await page.locator('.modal [data-testid=confirm]').click();
    await expect.poll(() => page.locator('.title-line .pill').getAttribute('data-status')).toBe('completed');
    const received = (await store.read(runStreamId(WAITING))).find((e) => e.type === 'SignalReceived');
    expect(received?.data).toMatchObject({ name: 'approval:large-refund', payload: { approved: true }, actor: 'ana' });
    expect(await waiting.count()).toBe(0);
  });

  it('shows the workflow state from the time-travel route, and forks at a selected event', async () => {
    await page.goto(`${server.url}/#/runs/${RUN}/v/9`);
    await page.reload();
    await expect.poll(() => page.locator('[data-testid=detail] .pane-head').first().innerText()).toContain('workflow state');
    // The reducer's state as it was at v9 (the first hotel chosen), the change highlighted.
    const state = page.locator('[data-testid=state]');
    await expect.poll(() => state.innerText()).toContain('Grand Hotel');
    expect(await state.innerText()).toContain('triedHotels');
    expect((await state.locator('[data-mark=added]').allInnerTexts()).join('')).toContain('Grand Hotel');
    await shot('run-workflow-state');

    await page.keyboard.press('p');
    await expect.poll(selectedVersion).toBe(2);
    const fork = page.locator('[data-action=fork]');
    expect(await fork.isDisabled()).toBe(false);
    await fork.click();
    await page.locator('.modal [data-testid=confirm]').click();
    await expect.poll(() => page.url()).not.toContain(`#/runs/${RUN}/`);
    const forkId = decodeURIComponent(page.url().split('#/runs/')[1]?.split('/')[0] ?? '');
    expect(forkId).not.toBe('');
    await expect.poll(() => page.locator('[data-testid=run-id]').innerText()).toBe(forkId);
    await expect.poll(() => row(1).innerText()).toContain(`fork of ${RUN} at v2`);
    const [started] = await store.read(runStreamId(forkId), { from: 1, to: 1 });
    expect(started?.data).toMatchObject({ forkedFrom: { runId: RUN, version: 2 } });
  });

  it('shows a parked reaction with its event and error; Retry and Skip, each after its dialog, move it on', async () => {
    const parkedOn = async (to: string) => {
      mailServer.up = false;
      const { events } = await store.append('invoices', [{ type: 'InvoiceIssued', data: { to } }]);
      await expect.poll(async () => (await runtime.reactions.status()).find((r) => r.name === mailer.name)?.state).toBe('parked');
      return events[0] as EventEnvelope;
    };
    // The runs of the tests before (a fork goes on in the background) have come to rest: the head moves only for this test.
    for (let head = -1; head !== (await store.headPosition()); ) {
      head = await store.headPosition();
      await new Promise((r) => setTimeout(r, 300));
    }
    const first = await parkedOn('acme');
    // Reached from the navigation.
    await page.goto(`${server.url}/#/`);
    await page.locator('[data-nav=reactions]').click();
    await expect.poll(() => page.url()).toContain('#/reactions');
    const row = page.locator(`tr[data-reaction="${mailer.name}"]`);
    await expect.poll(() => row.getAttribute('data-state')).toBe('parked');
    expect(await row.locator('.pill').innerText()).toBe('parked');
    expect(await row.locator('[data-testid=parked]').innerText()).toMatch(
      new RegExp(`^event ${first.position} InvoiceIssued of invoices · \\d+s ago · after 1 attempt\\n`),
    );
    expect(await row.locator('[data-testid=parked-error]').innerText()).toBe('Error: the mail server refused the invoice for acme');
    // It waits at the position before the invoice, two behind the head (the invoice, then its own ReactionParked); this runtime runs it.
    const owner = (await runtime.reactions.status()).find((r) => r.name === mailer.name)?.heldBy?.owner;
    expect(owner).toEqual(expect.any(String));
    expect(await store.headPosition()).toBe(first.position + 1);
    await expect
      .poll(async () => (await row.locator('td').allInnerTexts()).slice(1, 5))
      .toEqual([mailer.name, String(first.position - 1), '2', owner]);
    expect(await page.locator('[data-testid=live]').innerText()).toContain('live');
    await shot('reactions-parked');

    // Retry, the cause fixed: the invoice is mailed and the reaction follows the log again.
    mailServer.up = true;
    await row.locator('[data-action=retry]').click();
    await page.locator('.modal input[name=reason]').fill('mail server is back');
    await page.locator('.modal [data-testid=confirm]').click();
    await expect.poll(() => row.getAttribute('data-state')).toBe('ok');
    await expect.poll(() => mailed).toEqual(['acme']);
    expect(await row.locator('[data-action]').count()).toBe(0);
    const control = `$rewind-reaction-${mailer.name}`;
    expect((await store.read(control)).at(-1)).toMatchObject({
      type: ReactionEvents.ReactionRetried,
      data: { position: first.position, reason: 'mail server is back' },
    });

    // Parked again on the next invoice; the page sees it without a reload. Skip needs a reason.
    const second = await parkedOn('globex');
    await expect.poll(() => row.getAttribute('data-state')).toBe('parked');
    expect(await row.locator('[data-testid=parked-error]').innerText()).toBe('Error: the mail server refused the invoice for globex');
    await row.locator('[data-action=skip]').click();
    expect(await page.locator('.modal [data-testid=confirm]').isDisabled()).toBe(true);
    await page.locator('.modal input[name=reason]').fill('globex was invoiced by hand');
    await page.locator('.modal input[name=actor]').fill('ana');
    await page.locator('.modal [data-testid=confirm]').click();
    await expect.poll(() => row.getAttribute('data-state')).toBe('ok');
    expect((await store.read(control)).at(-1)).toMatchObject({
      type: ReactionEvents.ReactionSkipped,
      data: { position: second.position, reason: 'globex was invoiced by hand', actor: 'ana' },
    });
    // Gone past without acting, and caught up with the log.
    await expect.poll(() => row.locator('[data-testid=behind]').innerText()).toBe('0');
    expect(await row.innerText()).toContain('1 event skipped');
    expect(mailed).toEqual(['acme']);
    mailServer.up = true;
  });

  it('keeps a bearer token in sessionStorage and sends it', async () => {
    await page.goto(`${server.url}/#/`);
    await page.getByRole('button', { name: /token/ }).click();
    await page.fill('input[aria-label="bearer token"]', 'some-admin-token-0123456789');
    await page.getByRole('button', { name: 'Save' }).click();
    const sent = page.waitForRequest((r) => r.url().includes('/runs') && r.headers().authorization !== undefined);
    await page.reload();
    expect((await sent).headers().authorization).toBe('Bearer some-admin-token-0123456789');
    expect(await page.evaluate(() => sessionStorage.getItem('rewind.token'))).toBe('some-admin-token-0123456789');
    await page.evaluate(() => sessionStorage.removeItem('rewind.token'));
  });

  it('takes no orders from pages of other origins: their no-cors POSTs are refused and change nothing', async () => {
    const target = 'refund-csrf';
    await runtime.start(refund, { cents: 1 }, { runId: target });
    const runs = async () => (await runtime.listPage({ limit: 1000 })).runs.length;
    const before = { runs: await runs(), events: await store.streamVersion(runStreamId(target)) };
    // The page of the findings: simple requests, which a browser sends to any origin without asking first.
    const attack = `<!doctype html><script>
      const api = ${JSON.stringify(server.url)};
      Promise.allSettled([
        fetch(api + '/runs/${RUN}/fork', { method: 'POST', mode: 'no-cors' }),
        fetch(api + '/runs/${target}/signals/csrf', { method: 'POST', mode: 'no-cors' }),
        fetch(api + '/runs/${target}/signals/csrf', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{"payload":1}' }),
      ]).then(() => { document.title = 'sent'; });
    </script>`;
    const elsewhere = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(attack));
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const port = (elsewhere.address() as AddressInfo).port;
    /** How many POSTs to a route the server answered 403, from its metrics. */
    const refused = (route: string) =>
      Number(
        new RegExp(`rewind_http_requests_total\\{method="POST",route="${route}",status="403"\\} (\\d+)`).exec(
          server.metrics.render(undefined),
        )?.[1] ?? 0,
      );
    const routes = ['/runs/:runId/fork', '/runs/:runId/signals/:name'];
    try {
      // Another port of the same host (the same site), and another name for it (another site).
      for (const [origin, site] of [
        [`http://127.0.0.1:${port}`, 'same-site'],
        [`http://localhost:${port}`, 'cross-site'],
      ]) {
        const refusedBefore = routes.map(refused);
        const context = await browser.newContext();
        const attacker = await context.newPage();
        // What the browser sends, as it sends it (Playwright's own view of a request has only the provisional headers).
        const cdp = await context.newCDPSession(attacker);
        await cdp.send('Network.enable');
        const urls = new Map<string, string>();
        const headers = new Map<string, Record<string, unknown>>();
        cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
        cdp.on('Network.requestWillBeSentExtraInfo', (e) =>
          headers.set(e.requestId, Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k.toLowerCase(), v]))),
        );
        const failures: string[] = [];
        attacker.on('requestfailed', (request) => {
          if (request.url().startsWith(server.url)) failures.push(request.failure()?.errorText ?? '');
        });
        await attacker.goto(`${origin}/`);
        await attacker.waitForFunction(() => document.title === 'sent');
        const toServer = () =>
          [...urls]
            .filter(([id, url]) => url.startsWith(server.url) && headers.has(id))
            .map(([id, url]) => ({
              path: new URL(url).pathname,
              origin: headers.get(id)?.origin,
              site: headers.get(id)?.['sec-fetch-site'],
            }))
            .sort((x, y) => x.path.localeCompare(y.path));
        await expect.poll(() => toServer().length).toBe(3);
        // The browser says where the page is...
        expect(toServer()).toEqual([
          { path: `/runs/${target}/signals/csrf`, origin, site },
          { path: `/runs/${target}/signals/csrf`, origin, site },
          { path: `/runs/${RUN}/fork`, origin, site },
        ]);
        // ...and withholds the answer from the page, even opaque (Cross-Origin-Resource-Policy): a failed load to it.
        await expect.poll(() => failures).toEqual(Array(3).fill('net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin'));
        // The server got them, and refused them.
        expect(routes.map(refused)).toEqual([(refusedBefore[0] as number) + 1, (refusedBefore[1] as number) + 2]);
        await context.close();
      }
    } finally {
      await new Promise((resolve) => elsewhere.close(resolve));
    }
    expect(await runs()).toBe(before.runs);
    expect(await store.streamVersion(runStreamId(target))).toBe(before.events);
    // A signal goes to the run's mailbox first: nothing was posted there.
    expect(await store.streamVersion(`signals-${target}`)).toBe(0);
  });

  it('runs under its Content-Security-Policy: nothing it does was refused, and the policy holds', async () => {
    await page.goto(`${server.url}/#/runs/${RUN}`);
    const response = await page.reload();
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(response?.headers()['x-frame-options']).toBe('DENY');
    await expect.poll(() => page.locator('[data-testid=timeline] li').count()).toBeGreaterThan(0);
    expect(cspViolations).toEqual([]);
    // Code the page did not load from its server does not run, and the refusal is reported (so none above means none).
    const inline = await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'document.body.dataset.inline = "ran"';
      document.head.append(script);
      return document.body.dataset.inline ?? 'refused';
    });
    expect(inline).toBe('refused');
    await expect.poll(() => cspViolations.length).toBe(1);
    expect(cspViolations[0]).toMatch(
      /^Executing inline script violates the following Content Security Policy directive 'script-src 'self''/,
    );
  });
  it('shows runs a page at a time, newest first, with the counts of every run in the header', async () => {
    // 300 more runs, recorded straight into the log: more than a page of the list.
    await store.appendMany(
      Array.from({ length: 300 }, (_, i) => {
        const runId = `bulk-${String(i).padStart(3, '0')}`;
        return {
          streamId: runStreamId(runId),
          events: [{ type: 'RunStarted', data: { runId, workflow: 'bulk', workflowVersion: '1', input: null } }],
        };
      }),
    );
    await page.goto(`${server.url}/`);
    await page.reload();
    const rows = page.locator('table.runs tbody tr');
    await expect.poll(() => rows.count()).toBe(200);
    const total = await runtime.countRuns();
    expect(await page.locator('.chips .chip').first().innerText()).toContain(String(total.total));
    expect(await rows.first().getAttribute('data-run')).toBe('bulk-299');
    // A search by id reaches runs the pages shown do not hold yet (bulk-000… are the oldest).
    await page.fill('input[aria-label="search run id"]', 'bulk-00');
    await expect.poll(() => rows.count()).toBe(10);
    expect(await rows.first().getAttribute('data-run')).toBe('bulk-009');
    await page.fill('input[aria-label="search run id"]', '');
    await expect.poll(() => rows.count()).toBe(200);
    await page.getByRole('button', { name: 'Show older runs' }).click();
    await expect.poll(() => rows.count()).toBe(total.total);
    await expect.poll(() => page.getByRole('button', { name: 'Show older runs' }).count()).toBe(0);
  });
});
