/**
 * The HTTP source under the engine and at its edges: a no-change re-poll of an index with
 * abbreviated sizes sends no HEAD (lighttpd), a 500-entry nginx page, basic auth, a growing file,
 * and, from a scripted server for what real servers will not do on demand, an error page on
 * download and a connection cut mid-body followed by a resume.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, SourceError, TransientError } from '../../src/errors.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { createHttpSource } from '../../src/sources/http/http-source.js';
import { freePort } from '../helpers/free-port.js';
import { httpServerMissing, startWebServer, TEST_BEARER_TOKEN, type TestWebServer } from '../helpers/http-servers.js';
import { webSourceOptions } from '../helpers/http-source-options.js';
import { createLogSink } from '../helpers/log-sink.js';
import { makeTestCertificate } from '../helpers/tls-cert.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { webCycle, writeWebConfig } from '../helpers/web-engine.js';

const log = createLogSink().log;
const HOUR_AGO = (Date.now() - 3_600_000) / 1000;

function collect(): { sink: PassThrough; data: () => Buffer } {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  return { sink, data: () => Buffer.concat(chunks) };
}

describe.skipIf(httpServerMissing('lighttpd') !== undefined && process.env['CI'] !== 'true')(
  'lighttpd: abbreviated sizes',
  () => {
    let web: TestWebServer;
    let tmp: TmpDir;
    beforeAll(async () => {
      web = await startWebServer('lighttpd');
      tmp = await makeTmpDir('poller-http-engine-');
      await mkdir(path.join(web.root, 'radar'));
      for (let i = 0; i < 30; i++) {
        const f = path.join(web.root, 'radar', `vol-${i}.bufr`);
        await writeFile(f, randomBytes(2_000 + i * 100));
        await utimes(f, HOUR_AGO, HOUR_AGO);
      }
      await writeFile(path.join(web.root, 'radar', 'readme.txt'), 'not wanted');
    });
    afterAll(async () => {
      await web?.close();
      await tmp?.remove();
    });

    it('fetches every file once, and a no-change re-poll sends no HEAD and no GET of a file', async () => {
      const config = await writeWebConfig(tmp.path, { url: `http://127.0.0.1:${web.port}/` });
      const first = await webCycle(config);
      expect(first).toMatchObject({ fetched: 30, failed: 0 });
      const afterFirst = await web.accessLog();
      // One HEAD per wanted file (not for readme.txt), none for the index pages.
      const heads = afterFirst.filter((l) => l.startsWith('HEAD '));
      expect(heads.length).toBeGreaterThanOrEqual(30);
      expect(heads.some((l) => l.includes('readme'))).toBe(false);
      const second = await webCycle(config);
      expect(second).toMatchObject({ fetched: 0, failed: 0, listed: 30 });
      const added = (await web.accessLog()).slice(afterFirst.length);
      expect(added.filter((l) => l.startsWith('HEAD '))).toEqual([]);
      expect(added.filter((l) => l.startsWith('GET ') && l.endsWith('.bufr'))).toEqual([]);
    });

    it('asks again about a file still settling, and sees it grow', async () => {
      const f = path.join(web.root, 'radar', 'growing.bufr');
      await writeFile(f, 'x'.repeat(1000));
      const source = createHttpSource(webSourceOptions(web.port, log));
      const known = async () => ({
        sizeBytes: 1000,
        mtimeMs: Date.now(),
        mtimePrecision: 's' as const,
        settled: false,
      });
      const signal = AbortSignal.timeout(10_000);
      const before = (await source.list('radar', { signal, known })).find((e) => e.name === 'growing.bufr');
      await appendFile(f, 'y'.repeat(5000));
      const after = (await source.list('radar', { signal, known })).find((e) => e.name === 'growing.bufr');
      expect(before?.sizeBytes).toBe(1000);
      expect(after?.sizeBytes).toBe(6000);
      await source.close();
    });
  },
);

describe('nginx: a 500-entry page and basic auth', () => {
  let web: TestWebServer;
  beforeAll(async () => {
    web = await startWebServer('nginx-html');
    await mkdir(path.join(web.root, 'many'));
    for (let i = 0; i < 500; i++)
      await writeFile(path.join(web.root, 'many', `f-${String(i).padStart(4, '0')} ü.bufr`), String(i));
    await mkdir(path.join(web.root, 'protected'));
    await writeFile(path.join(web.root, 'protected', 'a.bufr'), 'secret data');
    await writeFile(path.join(path.dirname(web.root), 'htpasswd'), 'ingest:{PLAIN}s3cret\n');
  });
  afterAll(async () => web?.close());

  it('lists all 500 entries of one page with exact sizes; a new file gets one HEAD, for its ETag', async () => {
    const source = createHttpSource(webSourceOptions(web.port, log));
    const entries = await source.list('many', { signal: AbortSignal.timeout(10_000) });
    expect(entries).toHaveLength(500);
    const last = entries.find((e) => e.name === 'f-0499 ü.bufr');
    expect(last).toMatchObject({ sizeBytes: 3, type: 'file', mtimePrecision: 's' });
    expect(last?.etag).toMatch(/^"[0-9a-f]+-3"$/);
    expect(source.stats.heads).toBe(500);
    await source.close();
  });

  it('pauses on a refused login (SourceError) and lists with the right password', async () => {
    const wrong = createHttpSource(webSourceOptions(web.port, log, { user: 'ingest', password: 'nope' }));
    await expect(wrong.list('protected', { signal: AbortSignal.timeout(10_000) })).rejects.toBeInstanceOf(SourceError);
    await wrong.close();
    const right = createHttpSource(webSourceOptions(web.port, log, { user: 'ingest', password: 's3cret' }));
    const entries = await right.list('protected', { signal: AbortSignal.timeout(10_000) });
    expect(entries.map((e) => e.name)).toEqual(['a.bufr']);
    await right.close();
  });

  it('fails a file that is gone after listing with PermanentError', async () => {
    const source = createHttpSource(webSourceOptions(web.port, log));
    const { sink } = collect();
    await expect(
      source.download('many/gone.bufr', sink, { offsetBytes: 0, signal: AbortSignal.timeout(10_000) }),
    ).rejects.toBeInstanceOf(PermanentError);
    await source.close();
  });
});

describe('scripted server: error pages, throttling and a cut connection', () => {
  const body = randomBytes(200_000);
  let server: http.Server;
  let port: number;
  let cutNext = true;
  beforeAll(async () => {
    port = await freePort();
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/error.bufr') {
        res.writeHead(500, { 'content-type': 'text/html' });
        res.end('<html><body>Internal error</body></html>');
      } else if (url === '/soft-error.bufr') {
        // A "soft 404": 200 with an HTML page where the listing promised a data file.
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': 27 });
        res.end('<html>File not found</html>');
      } else if (url === '/weak.bufr' || url === '/strong.bufr') {
        res.writeHead(200, { etag: url === '/weak.bufr' ? 'W/"w1"' : '"s1"', 'content-length': 4 });
        res.end(req.method === 'HEAD' ? undefined : 'data');
      } else if (url === '/busy.bufr') {
        res.writeHead(503, { 'retry-after': '7' });
        res.end();
      } else if (url === '/big.bufr') {
        const etag = '"v1"';
        const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        if (range && req.headers['if-range'] === etag) {
          const start = Number(range[1]);
          res.writeHead(206, {
            etag,
            'content-length': body.length - start,
            'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
          });
          res.end(body.subarray(start));
        } else if (req.method === 'HEAD') {
          res.writeHead(200, { etag, 'content-length': body.length, 'accept-ranges': 'bytes' });
          res.end();
        } else {
          res.writeHead(200, { etag, 'content-length': body.length, 'accept-ranges': 'bytes' });
          if (cutNext) {
            cutNext = false;
            res.write(body.subarray(0, 70_000), () => res.socket?.destroy());
          } else res.end(body);
        }
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('never writes an error page into the file', async () => {
    const source = createHttpSource(webSourceOptions(port, log));
    const a = collect();
    await expect(
      source.download('error.bufr', a.sink, { offsetBytes: 0, signal: AbortSignal.timeout(10_000) }),
    ).rejects.toBeInstanceOf(TransientError);
    expect(a.data().length).toBe(0);
    const b = collect();
    await expect(
      source.download('soft-error.bufr', b.sink, {
        offsetBytes: 0,
        signal: AbortSignal.timeout(10_000),
        expect: { sizeBytes: 4096, mtimeMs: 0 },
      }),
    ).rejects.toMatchObject({ code: 'POLLER_HTTP_CHANGED' });
    expect(b.data().length).toBe(0);
    await source.close();
  });

  it('keeps a strong ETag as the version key and ignores a weak one', async () => {
    const source = createHttpSource(webSourceOptions(port, log));
    const signal = AbortSignal.timeout(10_000);
    expect((await source.stat?.('strong.bufr', { signal }))?.etag).toBe('"s1"');
    const weak = await source.stat?.('weak.bufr', { signal });
    expect(weak).toMatchObject({ sizeBytes: 4 });
    expect(weak?.etag).toBeUndefined();
    // A GET whose ETag is not the listed version's is refused before a byte is written.
    const c = collect();
    await expect(
      source.download('strong.bufr', c.sink, {
        offsetBytes: 0,
        signal,
        expect: { sizeBytes: 4, mtimeMs: 0, etag: '"s0"' },
      }),
    ).rejects.toMatchObject({ code: 'POLLER_HTTP_CHANGED' });
    expect(c.data().length).toBe(0);
    await source.close();
  });

  it('throttles on 503 with Retry-After', async () => {
    const source = createHttpSource(webSourceOptions(port, log));
    const { sink } = collect();
    await expect(
      source.download('busy.bufr', sink, { offsetBytes: 0, signal: AbortSignal.timeout(10_000) }),
    ).rejects.toMatchObject({ code: 'POLLER_HTTP_THROTTLED', retryAfterMs: 7000 });
    await source.close();
  });

  it('resumes with Range + If-Range after a cut connection', async () => {
    const source = createHttpSource(webSourceOptions(port, log));
    const first = collect();
    const expectV = { sizeBytes: body.length, mtimeMs: 0 };
    await expect(
      source.download('big.bufr', first.sink, { offsetBytes: 0, signal: AbortSignal.timeout(10_000), expect: expectV }),
    ).rejects.toBeInstanceOf(TransientError);
    const got = first.data();
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(body.length);
    const rest = collect();
    await source.download('big.bufr', rest.sink, {
      offsetBytes: got.length,
      signal: AbortSignal.timeout(10_000),
      expect: expectV,
    });
    expect(Buffer.concat([got, rest.data()]).equals(body)).toBe(true);
    await source.close();
  });
});

describe('nginx: the strong ETag is the version key', () => {
  let web: TestWebServer;
  let tmp: TmpDir;
  // A minute already past, so no settle wait: its index shows only "HH:MM" for both versions.
  const minuteStart = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
  beforeAll(async () => {
    web = await startWebServer('nginx-html');
    tmp = await makeTmpDir('poller-http-etag-');
    await mkdir(path.join(web.root, 'radar'));
    for (const name of ['a.bufr', 'b.bufr']) {
      const f = path.join(web.root, 'radar', name);
      await writeFile(f, `${name} v1 `.padEnd(64, '.'));
      await utimes(f, (minuteStart + 5_000) / 1000, (minuteStart + 5_000) / 1000);
    }
  });
  afterAll(async () => {
    await web?.close();
    await tmp?.remove();
  });

  it('fetches again a file rewritten with the same size inside the same listed minute, and not an unchanged one', async () => {
    const config = await writeWebConfig(tmp.path, { url: `http://127.0.0.1:${web.port}/`, minAge: '0s' });
    expect(await webCycle(config)).toMatchObject({ fetched: 2, failed: 0 });
    const afterFirst = await web.accessLog();
    const a = path.join(web.root, 'radar', 'a.bufr');
    const v2 = 'a.bufr v2 '.padEnd(64, '.');
    await writeFile(a, v2);
    await utimes(a, (minuteStart + 25_000) / 1000, (minuteStart + 25_000) / 1000);
    // The index row of a.bufr is unchanged: same bytes count, same minute.
    const index = await fetch(`http://127.0.0.1:${web.port}/radar/`).then((r) => r.text());
    expect(index).toMatch(/a\.bufr<\/a>\s+\S+ \d\d:\d\d\s+64/);
    expect(await webCycle(config)).toMatchObject({ fetched: 1, failed: 0 });
    const added = (await web.accessLog()).slice(afterFirst.length);
    expect(added.filter((l) => l.startsWith('GET ') && l.endsWith('.bufr'))).toEqual(['GET /radar/a.bufr']);
    const landed = await readFile(path.join(tmp.path, 'landing', 'web', 'radar', 'a.bufr'), 'utf8');
    expect(landed).toBe(v2);
    // Nothing changed since: nothing is fetched.
    expect(await webCycle(config)).toMatchObject({ fetched: 0, failed: 0 });
  });
});

describe.skipIf(httpServerMissing('apache-table') !== undefined && process.env['CI'] !== 'true')(
  'Apache: index times in its own zone, no HEAD on a no-change re-poll',
  () => {
    let web: TestWebServer;
    let tmp: TmpDir;
    // A zone far from UTC, with the server process in it: its index shows local times.
    const zone = 'America/New_York';
    const mtimeMs = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
    beforeAll(async () => {
      web = await startWebServer('apache-table', { timezone: zone });
      tmp = await makeTmpDir('poller-http-apache-');
      await mkdir(path.join(web.root, 'radar'));
      for (let i = 0; i < 12; i++) {
        const f = path.join(web.root, 'radar', `vol-${i}.bufr`);
        await writeFile(f, randomBytes(1_500 + i * 700));
        await utimes(f, mtimeMs / 1000, mtimeMs / 1000);
      }
    });
    afterAll(async () => {
      await web?.close();
      await tmp?.remove();
    });

    it('reads the listed times in the `timezone` option (and hours off without it)', async () => {
      const signal = AbortSignal.timeout(10_000);
      const inZone = createHttpSource(webSourceOptions(web.port, log, { timezone: zone }));
      const wanted = () => false; // the rows as listed, no HEAD
      const row = (await inZone.list('radar', { signal, wanted })).find((e) => e.name === 'vol-0.bufr');
      expect(row).toMatchObject({ mtimeMs, mtimePrecision: 'minute' });
      await inZone.close();
      const asUtc = createHttpSource(webSourceOptions(web.port, log));
      const wrong = (await asUtc.list('radar', { signal, wanted })).find((e) => e.name === 'vol-0.bufr');
      expect(Math.abs((wrong?.mtimeMs ?? 0) - mtimeMs)).toBeGreaterThanOrEqual(3_600_000);
      await asUtc.close();
    });

    it('fetches every file once; the re-poll sends no HEAD and no GET of a file', async () => {
      const config = await writeWebConfig(tmp.path, { url: `http://127.0.0.1:${web.port}/`, timezone: zone });
      expect(await webCycle(config)).toMatchObject({ fetched: 12, failed: 0 });
      const afterFirst = await web.accessLog();
      expect(afterFirst.filter((l) => l.startsWith('HEAD ')).length).toBe(12);
      expect(await webCycle(config)).toMatchObject({ fetched: 0, failed: 0, listed: 12 });
      const added = (await web.accessLog()).slice(afterFirst.length);
      expect(added.filter((l) => l.startsWith('HEAD '))).toEqual([]);
      expect(added.filter((l) => l.startsWith('GET ') && l.endsWith('.bufr'))).toEqual([]);
    });
  },
);

describe('nginx faults under the engine: refused access, gone after listing, soft 404, throttling', () => {
  let web: TestWebServer;
  let tmp: TmpDir;
  const HOUR = Date.now() / 1000 - 3600;
  beforeAll(async () => {
    // JSON: exact rows, so a download is the first request about a file (no HEAD filters it out).
    web = await startWebServer('nginx-json');
    tmp = await makeTmpDir('poller-http-faults-');
    for (const d of ['protected', 'forbidden', 'gone', 'soft', 'busy', 'broken', 'many'])
      await mkdir(path.join(web.root, d));
    await writeFile(path.join(web.root, 'broken', 'a.bufr'), 'served as a 500');
    await utimes(path.join(web.root, 'broken', 'a.bufr'), HOUR, HOUR);
    for (let i = 0; i < 40; i++) {
      const f = path.join(web.root, 'many', `f-${i}.bufr`);
      await writeFile(f, `file ${i}`);
      await utimes(f, HOUR, HOUR);
    }
    await writeFile(path.join(path.dirname(web.root), 'htpasswd'), 'ingest:{PLAIN}s3cret\n');
    await writeFile(path.join(web.root, 'protected', 'a.bufr'), 'secret data');
    await writeFile(path.join(web.root, 'forbidden', 'a.bufr'), 'no access');
    // A stale index page, as a script that writes index pages leaves it: it still lists a file
    // that is gone (in nginx's JSON form, so nothing but the GET asks about the file).
    const stale = JSON.stringify([
      { name: 'vanished.bufr', type: 'file', mtime: new Date(HOUR * 1000).toUTCString(), size: 5000 },
    ]);
    for (const d of ['gone', 'soft']) await writeFile(path.join(web.root, d, 'index.html'), stale);
    for (const name of ['slow.bufr', 'busy.bufr']) {
      await writeFile(path.join(web.root, 'busy', name), 'x'.repeat(100));
      await utimes(path.join(web.root, 'busy', name), HOUR, HOUR);
    }
    await writeFile(path.join(tmp.path, 'password'), 'wrong-password\n');
  });
  afterAll(async () => {
    await web?.close();
    await tmp?.remove();
  });

  /** A working directory (config, ledger, landing) of its own per case. */
  const caseDir = async (name: string) => {
    const d = path.join(tmp.path, name);
    await mkdir(d, { recursive: true });
    return d;
  };
  const history = async (dir: string, p: string) => {
    const ledger = new SqliteLedger(path.join(dir, 'ledger.db'));
    try {
      return await ledger.history('web', p);
    } finally {
      await ledger.close();
    }
  };

  it('a 500 on download is retried, then recorded as a failure to retry later (not quarantined)', async () => {
    const dir = await caseDir('broken');
    const summary = await webCycle(await writeWebConfig(dir, { url: `http://127.0.0.1:${web.port}/broken/` }));
    expect(summary).toMatchObject({ fetched: 0, failed: 1 });
    const [row] = await history(dir, 'a.bufr');
    expect(row).toMatchObject({ state: 'failed', errorCode: 'POLLER_HTTP_SERVER_ERROR', fetchAttempts: 1 });
    // The in-cycle retries reached the server: one GET per attempt.
    const gets = (await web.accessLog()).filter((l) => l === 'GET /broken/a.bufr');
    expect(gets.length).toBeGreaterThanOrEqual(2);
  });

  it('keeps connections alive: 40 downloads over no more connections than allowed', async () => {
    const dir = await caseDir('keepalive');
    const before = (await web.connectionIds()).length;
    const summary = await webCycle(
      await writeWebConfig(dir, { url: `http://127.0.0.1:${web.port}/many/`, concurrency: 4, maxConnections: 4 }),
    );
    expect(summary).toMatchObject({ fetched: 40, failed: 0 });
    const ids = new Set((await web.connectionIds()).slice(before));
    expect(ids.size).toBeGreaterThan(0);
    expect(ids.size).toBeLessThanOrEqual(4);
  });

  it('401 (wrong password) and 403 pause the source with one line and no secret', async () => {
    const unauth = await webCycle(
      await writeWebConfig(tmp.path, {
        url: `http://ingest@127.0.0.1:${web.port}/protected/`,
        passwordFile: './password',
      }),
    );
    expect(unauth.error).toMatchObject({ code: 'POLLER_HTTP_AUTH_REJECTED', paused: true });
    expect(unauth.error?.message).toMatch(/401/);
    expect(unauth.error?.message).not.toMatch(/\n|wrong-password/);
    const forbidden = await webCycle(
      await writeWebConfig(tmp.path, { url: `http://127.0.0.1:${web.port}/forbidden/` }),
    );
    expect(forbidden.error).toMatchObject({ code: 'POLLER_HTTP_AUTH_REJECTED', paused: true });
    expect(forbidden.error?.message).toMatch(/403/);
    expect(forbidden.error?.message).not.toMatch(/\n/);
  });

  it('a file listed and then 404 fails that file, and lands nothing', async () => {
    const dir = await caseDir('gone');
    const summary = await webCycle(await writeWebConfig(dir, { url: `http://127.0.0.1:${web.port}/gone/` }));
    expect(summary).toMatchObject({ fetched: 0, failed: 1 });
    expect(summary.error).toBeUndefined();
    const [row] = await history(dir, 'vanished.bufr');
    expect(row).toMatchObject({ state: 'quarantined', errorCode: 'POLLER_HTTP_NOT_FOUND' });
    expect(existsSync(path.join(dir, 'landing', 'web', 'vanished.bufr'))).toBe(false);
  });

  it('a "soft 404" (an HTML page with status 200) is never landed', async () => {
    const dir = await caseDir('soft');
    const summary = await webCycle(await writeWebConfig(dir, { url: `http://127.0.0.1:${web.port}/soft/` }));
    expect(summary.fetched).toBe(0);
    // Refused as a changed file (its length is not the listed one): back to settling, nothing landed.
    const [row] = await history(dir, 'vanished.bufr');
    expect(row).toMatchObject({ state: 'seen', localPath: null, fetchedMs: null });
    expect(existsSync(path.join(dir, 'landing', 'web', 'vanished.bufr'))).toBe(false);
    const partials = await readdir(path.join(dir, 'landing', '.partial')).catch(() => []);
    for (const p of partials) expect(statSync(path.join(dir, 'landing', '.partial', p)).size).toBe(0);
  });

  it('429 and 503 with Retry-After throttle: no attempt used, retried no sooner than asked', async () => {
    const before = Date.now();
    const dir = await caseDir('busy');
    const summary = await webCycle(await writeWebConfig(dir, { url: `http://127.0.0.1:${web.port}/busy/` }));
    expect(summary).toMatchObject({ fetched: 0 });
    for (const [name, seconds] of [
      ['slow.bufr', 7],
      ['busy.bufr', 9],
    ] as const) {
      const [row] = await history(dir, name);
      expect(row).toMatchObject({ errorCode: 'POLLER_HTTP_THROTTLED', fetchAttempts: 0 });
      expect(row?.nextRetryMs ?? 0).toBeGreaterThanOrEqual(before + seconds * 1000);
    }
  });
});

describe('nginx over HTTPS: verified by default, `ca` and `insecure`; bearer token from a file; hostile links', () => {
  let web: TestWebServer;
  let tmp: TmpDir;
  beforeAll(async () => {
    tmp = await makeTmpDir('poller-https-');
    const cert = await makeTestCertificate(tmp.path);
    web = await startWebServer('nginx-html', { tls: cert });
    const old = Date.now() / 1000 - 3600;
    for (const d of ['radar', 'bearer', 'hostile']) await mkdir(path.join(web.root, d));
    for (const d of ['radar', 'bearer']) {
      await writeFile(path.join(web.root, d, 'a.bufr'), `${d} data`);
      await utimes(path.join(web.root, d, 'a.bufr'), old, old);
    }
    await writeFile(path.join(tmp.path, 'token'), `${TEST_BEARER_TOKEN}\n`);
    await writeFile(path.join(tmp.path, 'wrong-token'), 'not-the-token\n');
    // A hand-written index (nginx serves it as the directory's index.html) with every kind of link
    // a listing must not follow; only ok.bufr is a child of the directory.
    await writeFile(path.join(web.root, 'secret.bufr'), 'outside the source root');
    await writeFile(path.join(web.root, 'hostile', 'ok.bufr'), 'fine');
    const links = [
      '../',
      '../secret.bufr',
      '/secret.bufr',
      `https://127.0.0.2:${web.port}/hostile/other-host.bufr`,
      '//evil.example.com/x.bufr',
      '%2e%2e/secret.bufr',
      'ok.bufr?download=1',
      'javascript:alert(1)',
      'ok.bufr',
    ];
    await writeFile(
      path.join(web.root, 'hostile', 'index.html'),
      `<html><body><pre>${links.map((h) => `<a href="${h}">x</a>  23-Nov-2026 10:05  4`).join('\n')}</pre></body></html>`,
    );
  });
  afterAll(async () => {
    await web?.close();
    await tmp?.remove();
  });

  it('refuses an unverified certificate (pause), lists with `ca`, and with `insecure`', async () => {
    const url = `https://127.0.0.1:${web.port}/radar/`;
    const plain = await webCycle(await writeWebConfig(await sub(tmp, 'plain'), { url }));
    expect(plain.error).toMatchObject({ code: 'POLLER_HTTP_TLS_REJECTED', paused: true });
    const withCa = await webCycle(
      await writeWebConfig(await sub(tmp, 'ca'), { url, ca: path.join(tmp.path, 'server.crt') }),
    );
    expect(withCa).toMatchObject({ fetched: 1, failed: 0 });
    const insecure = await webCycle(await writeWebConfig(await sub(tmp, 'insecure'), { url, insecure: true }));
    expect(insecure).toMatchObject({ fetched: 1, failed: 0 });
  });

  it('sends the bearer token from `bearerTokenFile`; a wrong one pauses the source', async () => {
    const url = `https://127.0.0.1:${web.port}/bearer/`;
    const ca = path.join(tmp.path, 'server.crt');
    const good = await webCycle(
      await writeWebConfig(await sub(tmp, 'bearer'), { url, ca, bearerTokenFile: path.join(tmp.path, 'token') }),
    );
    expect(good).toMatchObject({ fetched: 1, failed: 0 });
    const wrongDir = await sub(tmp, 'bearer-wrong');
    const wrong = await webCycle(
      await writeWebConfig(wrongDir, { url, ca, bearerTokenFile: path.join(tmp.path, 'wrong-token') }),
    );
    expect(wrong.error).toMatchObject({ code: 'POLLER_HTTP_AUTH_REJECTED', paused: true });
    expect(wrong.error?.message).not.toContain('not-the-token');
  });

  it('follows no hostile link of an index: only the directory child is listed and fetched', async () => {
    const before = (await web.accessLog()).length;
    const summary = await webCycle(
      await writeWebConfig(await sub(tmp, 'hostile'), {
        url: `https://127.0.0.1:${web.port}/hostile/`,
        ca: path.join(tmp.path, 'server.crt'),
        minAge: '0s',
      }),
    );
    expect(summary).toMatchObject({ listed: 1, fetched: 1, failed: 0, rejected: 0 });
    const requested = (await web.accessLog()).slice(before);
    // The index (once per settle listing), HEADs of ok.bufr while it settles, one GET: nothing else.
    expect(new Set(requested)).toEqual(new Set(['GET /hostile/', 'HEAD /hostile/ok.bufr', 'GET /hostile/ok.bufr']));
    expect(requested.filter((l) => l === 'GET /hostile/ok.bufr')).toHaveLength(1);
  });
});

async function sub(tmp: TmpDir, name: string): Promise<string> {
  const d = path.join(tmp.path, name);
  await mkdir(d, { recursive: true });
  return d;
}
