/**
 * The status page in a real browser: Debian's Chromium, driven by playwright-core, against a
 * real daemon with real FTP sources. The page shows every source in its state (a late one in
 * amber), a plugin failure whose `poller why` text opens on click, counts that move without a
 * reload, a source turning red when its server stops; it fits a phone-width window, makes no
 * request outside its origin, logs no console error (a CSP violation would be one) and asks for
 * credentials. Screenshots go to test-results/.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/engine-env.js';
import { HTTP_PASSWORD, HTTP_USER, type StatusDaemon, startStatusDaemon } from '../helpers/status-daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ARTIFACTS = path.join(REPO_ROOT, 'test-results');
if (!HAVE_CHROMIUM) {
  if (process.env['CI'] === 'true') throw new Error(`${CHROMIUM} not found; run scripts/install-browser.sh`);
  console.warn(`[status page] ${CHROMIUM} not found: skipping the browser tests (run scripts/install-browser.sh)`);
}

/** Amber and red of the page's stylesheet, as the browser reports computed colours. */
const AMBER = 'rgb(176, 120, 0)';
const RED = 'rgb(207, 34, 46)';
const GREEN = 'rgb(26, 127, 55)';

// A wait in the page, bounded: Playwright polls the condition until it holds or the time is up.
const WAIT_MS = 45_000;

describe.skipIf(!HAVE_CHROMIUM)('the status page in Chromium', () => {
  let setup: StatusDaemon;
  let browser: Browser;
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    setup = await startStatusDaemon({ auth: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic'],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await setup?.close();
  });

  /** A page with credentials that records console errors and every request it makes. */
  async function openPage(viewport = { width: 1280, height: 900 }) {
    const context = await browser.newContext({
      viewport,
      httpCredentials: { username: HTTP_USER, password: HTTP_PASSWORD, send: 'always' },
    });
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    const res = await page.goto(`${setup.base}/`);
    return { context, page, errors, requests, res };
  }

  const card = (page: Page, name: string) => page.locator(`article.source[data-source="${name}"]`);
  /** A computed style in the page (an expression string: the project compiles without the DOM library). */
  const computed = (page: Page, selector: string, property: string) =>
    page.evaluate(
      `getComputedStyle(document.querySelector(${JSON.stringify(selector)})).${property}`,
    ) as Promise<string>;
  const badgeColour = (page: Page, name: string) =>
    computed(page, `article.source[data-source="${name}"] .badge`, 'backgroundColor');

  it('shows each source in its state, a failure with its why text, and updates without a reload', async () => {
    const { context, page, errors, requests, res } = await openPage();
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/^default-src 'none'; script-src 'nonce-/);

    // Every source, in its state, once the first polls have run (the page refreshes itself).
    await expect.poll(() => page.locator('article.source').count(), { timeout: WAIT_MS }).toBe(3);
    await page.locator('tr.failure[data-path="bad-1.bufr"]').waitFor({ timeout: WAIT_MS });
    await expect
      .poll(() => card(page, 'north').locator('.files').textContent(), { timeout: WAIT_MS })
      .toMatch(/processed 2/);
    expect(await card(page, 'north').locator('.badge').textContent()).toBe('ok');
    expect(await badgeColour(page, 'north')).toBe(GREEN);
    expect(await card(page, 'south').locator('.badge').textContent()).toBe('late');
    expect(await badgeColour(page, 'south')).toBe(AMBER);
    expect(await card(page, 'south').locator('.newest').getAttribute('class')).toContain('fresh-late');
    expect(await card(page, 'south').locator('.newest').textContent()).toMatch(
      /^1[56] min old, expected every 10 min$/,
    );
    expect(await card(page, 'north').locator('svg.chart rect').count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });

    // The failure's `poller why` text opens on click.
    const row = page.locator('tr.failure[data-path="bad-1.bufr"]');
    expect(await row.locator('td[data-label="plugin"]').textContent()).toBe('throws');
    await row.click();
    const why = page.locator('#why-text');
    await expect.poll(() => why.textContent(), { timeout: WAIT_MS }).toMatch(/in plugin throws/);
    expect(await page.locator('#why').isVisible()).toBe(true);
    expect(await page.locator('#why-path').textContent()).toBe('north: bad-1.bufr');

    // A new file arrives: the count moves, the page is the same document (no reload), the why panel stays.
    await page.evaluate(() => {
      Object.assign(globalThis, { marker: 'same page' });
    });
    await setup.putNorth('n3.bufr', 'north volume 3');
    await expect
      .poll(() => card(page, 'north').locator('.files').textContent(), { timeout: WAIT_MS })
      .toMatch(/processed 3/);
    expect(await page.evaluate(() => (globalThis as { marker?: string }).marker)).toBe('same page');
    expect(await page.evaluate("performance.getEntriesByType('navigation').length")).toBe(1);
    expect(await page.locator('#why').isVisible()).toBe(true);
    expect(await page.locator('tr.failure.selected').count()).toBe(1);

    // The east server stops: its card turns red, with the error, within a few polls.
    await setup.east.close();
    await expect.poll(() => badgeColour(page, 'east'), { timeout: WAIT_MS }).toBe(RED);
    expect(await card(page, 'east').locator('.badge').textContent()).toMatch(/^(paused|failing)$/);
    expect(await card(page, 'east').locator('.last-error').textContent()).toMatch(/connection refused/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-east-down.png'), fullPage: true });

    const origin = new URL(setup.base).origin;
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'))).toEqual([]);
    expect(requests.filter((u) => u.includes('/api/status')).length).toBeGreaterThan(1);
    expect(errors).toEqual([]);
    await context.close();
  }, 240_000);

  it('fits a narrow window: one column, table rows as blocks, no sideways scroll', async () => {
    const { context, page, errors } = await openPage({ width: 360, height: 800 });
    await page.locator('tr.failure').first().waitFor({ timeout: WAIT_MS });
    const style = (selector: string, property: string) => computed(page, selector, property);
    const layout = {
      scrollWidth: await page.evaluate('document.documentElement.scrollWidth'),
      columns: (await style('.sources', 'gridTemplateColumns')).split(' ').length,
      header: await style('.failures thead', 'display'),
      cell: await style('tr.failure td', 'display'),
    };
    expect(layout).toEqual({ scrollWidth: 360, columns: 1, header: 'none', cell: 'block' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-narrow.png'), fullPage: true });
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it('asks for credentials and shows nothing without them', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Headless Chromium has no one to ask for a password: the navigation fails on the challenge.
    await expect(page.goto(`${setup.base}/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    expect(await page.locator('article.source').count()).toBe(0);
    const res = await context.request.get(`${setup.base}/api/status`);
    expect(res.status()).toBe(401);
    expect(res.headers()['www-authenticate']).toMatch(/^Basic realm="poller"/);
    expect(await res.text()).not.toContain('north');
    await context.close();
  }, 30_000);
});
