/**
 * `GET /api/status`, `/api/why` and `/` on a real daemon with real FTP sources: the document
 * matches its published schema and says which source is ok, late or failing; auth keeps out
 * requests without the password or token (the probes stay open); `poller_source_late` agrees
 * with the page; and no answer, header or body, ever carries a password, token or credential.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/engine-env.js';
import { findSamples, parsePrometheusText } from '../helpers/prometheus-text.js';
import {
  FTP_PASSWORD,
  HTTP_PASSWORD,
  HTTP_TOKEN,
  HTTP_USER,
  type StatusDaemon,
  startStatusDaemon,
} from '../helpers/status-daemon.js';
import { waitFor } from '../helpers/wait-for.js';

const schema = JSON.parse(readFileSync(path.join(REPO_ROOT, 'docs', 'status-api.schema.json'), 'utf8')) as object;
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

interface Report {
  sources: Array<{
    name: string;
    state: string;
    freshness: string;
    pausedReason: string | null;
    files: Record<string, number>;
  }>;
  failures: Array<{ source: string; path: string; plugin: string | null; state: string }>;
}

let setup: StatusDaemon | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

/** Every form a secret could leak in: as is, URL-encoded, base64 (alone and as basic-auth userinfo). */
function secretForms(): string[] {
  const secrets = [FTP_PASSWORD, HTTP_PASSWORD, HTTP_TOKEN];
  return [
    ...secrets.flatMap((s) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]),
    Buffer.from(`${HTTP_USER}:${HTTP_PASSWORD}`).toString('base64'),
  ];
}

describe('the status API with auth', () => {
  it('serves a schema-valid document, asks for credentials, and never shows a secret', {
    timeout: 150_000,
  }, async () => {
    setup = await startStatusDaemon({ auth: true });
    const s = setup;
    const seen: string[] = [];
    const get = async (p: string, headers: Record<string, string> = s.authHeaders) => {
      const res = await fetch(`${s.base}${p}`, { headers });
      const body = await res.text();
      seen.push(JSON.stringify([...res.headers]), body);
      return { res, body };
    };
    const report = async () => JSON.parse((await get('/api/status')).body) as Report;

    // Bound to the loopback address by default.
    expect(s.daemon.lines().find((l) => l.event === 'http.listening')?.['host']).toBe('127.0.0.1');

    // Without credentials, or with wrong ones: 401 everywhere but the probes.
    for (const p of ['/', '/api/status', '/api/why?path=n1.bufr', '/metrics']) {
      const { res } = await get(p, {});
      expect(res.status, p).toBe(401);
      expect(res.headers.get('www-authenticate'), p).toMatch(/^Basic /);
    }
    const wrongBasic = { Authorization: `Basic ${Buffer.from(`${HTTP_USER}:nope`).toString('base64')}` };
    expect((await get('/api/status', wrongBasic)).res.status).toBe(401);
    expect((await get('/api/status', { Authorization: 'Bearer nope' })).res.status).toBe(401);
    expect((await get('/api/status', { Authorization: `Bearer ${HTTP_TOKEN}` })).res.status).toBe(200);
    expect((await get('/healthz', {})).res.status).toBe(200);

    const r = await waitFor(
      async () => {
        const doc = await report();
        const north = doc.sources.find((x) => x.name === 'north');
        const done = doc.sources.every((x) => (x.files['processed'] ?? 0) >= (x.name === 'north' ? 2 : 1));
        // The failed plugin run shows in `failures` before the file's verdict is committed: wait
        // for the verdict too, so `why` below sees the file failed, not still processing.
        const verdict = north && (north.files['failed'] ?? 0) + (north.files['quarantined'] ?? 0) >= 1;
        return done && verdict && doc.failures.some((f) => f.path === 'bad-1.bufr') ? doc : undefined;
      },
      { timeoutMs: 45_000, what: 'every source processed and the failure recorded' },
    );
    expect(validate(r), JSON.stringify(validate.errors)).toBe(true);
    const state = Object.fromEntries(r.sources.map((x) => [x.name, [x.state, x.freshness]]));
    expect(state).toEqual({ north: ['ok', 'ok'], south: ['late', 'late'], east: ['ok', 'ok'] });
    expect(r.failures[0]).toMatchObject({ source: 'north', path: 'bad-1.bufr', plugin: 'throws' });

    const why = await get('/api/why?source=north&path=bad-1.bufr');
    expect(why.res.status).toBe(200);
    expect(why.res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(why.body).toMatch(/^north:bad-1\.bufr: (failed|quarantined) in plugin throws/);
    expect(why.body).toContain('boom on bad-1.bufr');
    expect((await get('/api/why')).res.status).toBe(400);

    const metrics = parsePrometheusText((await get('/metrics')).body);
    const late = (source: string) => findSamples(metrics, 'poller_source_late', { source })[0]?.value;
    expect([late('north'), late('south'), late('east')]).toEqual([0, 1, 0]);

    const page = await get('/');
    expect(page.res.status).toBe(200);
    const csp = page.res.headers.get('content-security-policy') ?? '';
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(csp).toMatch(/^default-src 'none'/);
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    expect(page.res.headers.get('x-frame-options')).toBe('DENY');
    expect((await get('/api/status')).res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; frame-ancestors 'none'",
    );
    // A second page load gets a new nonce.
    expect((await get('/')).res.headers.get('content-security-policy')).not.toBe(csp);

    // The east server goes away: the source turns paused (by its error) or failing, with the error.
    await s.east.close();
    const down = await waitFor(
      async () => {
        const east = (await report()).sources.find((x) => x.name === 'east');
        return east && east.state !== 'ok' ? east : undefined;
      },
      { timeoutMs: 45_000, what: 'east no longer ok with its server stopped' },
    );
    expect(['paused', 'failing']).toContain(down.state);
    await get('/');
    await get('/readyz', {});

    const all = seen.join('\n');
    for (const form of secretForms()) expect(all.includes(form), `a response contains ${form}`).toBe(false);
    expect(all).not.toMatch(/ftp:\/\/[^/\s"]*:[^/\s"]*@/);
  });
});

describe('the status API without auth', () => {
  it('serves the page and the document to anyone who can reach the address', { timeout: 40_000 }, async () => {
    setup = await startStatusDaemon({ auth: false });
    const s = setup;
    const page = await fetch(`${s.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('data-source="south"');
    const res = await fetch(`${s.base}/api/status`);
    expect(res.status).toBe(200);
    expect(validate(await res.json())).toBe(true);
    expect((await fetch(`${s.base}/api/nothing`)).status).toBe(404);
    expect((await fetch(`${s.base}/api/status`, { method: 'POST' })).status).toBe(405);
  });
});
