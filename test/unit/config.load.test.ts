import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig, loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { parseDurationMs } from '../../src/util/duration.js';

const base = {
  landing: './landing',
  ledger: './ledger.db',
  sources: [
    {
      name: 'radar-north',
      url: 'ftp://ingest@radar.example.org/outgoing',
      password: '${RADAR_PW}',
      include: '**/*.bufr',
    },
  ],
};

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('parses durations', () => {
    expect(parseDurationMs('20s')).toBe(20_000);
    expect(parseDurationMs('5m')).toBe(300_000);
    expect(parseDurationMs('6h')).toBe(21_600_000);
    expect(parseDurationMs('1500ms')).toBe(1500);
    expect(parseDurationMs(250)).toBe(250);
    expect(parseDurationMs('soon')).toBeUndefined();
  });

  it('builds a complete source from the design sketch, secrets from env, paths from the file dir', () => {
    const c = buildConfig(
      { ...base, sources: [{ ...base.sources[0], minAge: '20s', concurrency: 3 }] },
      '/etc/poller',
      { RADAR_PW: 's3cret' },
    );
    const s = c.sources[0]!;
    expect(c.landing).toBe('/etc/poller/landing');
    expect(s.password).toBe('s3cret');
    expect(s.user).toBe('ingest');
    expect(s.host).toBe('radar.example.org');
    expect(s.port).toBe(21);
    expect(s.rootPath).toBe('/outgoing');
    expect(s.include).toEqual(['**/*.bufr']);
    expect(s.minAgeMs).toBe(20_000);
    expect(s.maxConnections).toBe(3);
    expect(s.displayUrl).not.toContain('s3cret');
    expect(Object.isFrozen(c.sources)).toBe(true);
  });

  it('ftps implies explicit TLS; implicit TLS defaults to port 990', () => {
    const c = buildConfig(
      {
        ...base,
        sources: [
          { name: 'a', url: 'ftps://h/x' },
          { name: 'b', url: 'ftp://h/x', tls: 'implicit' },
        ],
      },
      '/',
      {},
    );
    expect(c.sources[0]!.tls.mode).toBe('explicit');
    expect(c.sources[1]!.port).toBe(990);
  });

  it('reports every problem at once, by path, one line each', () => {
    const issues = issuesOf(() =>
      buildConfig(
        {
          landing: './l',
          ledger: './l.db',
          sources: [
            { name: 'ok', url: 'ftpx://host/x', concurrency: 0 },
            { name: 'bad name!', url: 'ftp://h/', minAge: 'soon', schedule: '*/0 * * *' },
          ],
          plugins: [{ use: 'archive', timeout: 'later' }],
          extra: 1,
        },
        '/',
        {},
      ),
    );
    const text = issues.join('\n');
    expect(text).toMatch(
      /^sources\[0\]\.url: scheme "ftpx" is not supported; use ftp, ftps, sftp, file, http, https, s3, wis2\+mqtt, wis2\+mqtts or wis2\+wss$/m,
    );
    expect(text).toMatch(/^sources\[0\]\.concurrency: /m);
    expect(text).toMatch(/^sources\[1\]\.name: /m);
    expect(text).toMatch(/^sources\[1\]\.minAge: "soon" is not a duration/m);
    expect(text).toMatch(/^sources\[1\]\.schedule: invalid cron expression/m);
    expect(text).toMatch(/^plugins\[0\]\.timeout: /m);
    expect(text).toMatch(/extra/);
    for (const line of issues) expect(line).not.toContain('\n');
  });

  it('reads a WIS2 subscription: topic filter from the URL text (# included), settle-free, stable client id', () => {
    const c = buildConfig(
      {
        ...base,
        sources: [
          {
            name: 'gb',
            url: 'wis2+mqtt://everyone@127.0.0.1/$share/poller/origin/a/wis2/+/data/core/#',
            password: 'everyone',
          },
          {
            name: 'gbs',
            url: 'wis2+mqtts://broker.example.org/cache/a/wis2/#',
            wis2: { protocolVersion: 4, clientId: 'c1' },
          },
        ],
      },
      '/',
      {},
    );
    expect(c.sources[0]).toMatchObject({
      protocol: 'wis2+mqtt',
      port: 1883,
      user: 'everyone',
      stableListings: 1,
      wis2: {
        topic: '$share/poller/origin/a/wis2/+/data/core/#',
        clientId: 'poller-gb',
        protocolVersion: 5,
        tls: false,
      },
    });
    expect(c.sources[0]!.displayUrl).not.toContain('everyone@');
    expect(c.sources[1]).toMatchObject({ port: 8883, wis2: { tls: true, protocolVersion: 4, clientId: 'c1' } });
    const issues = issuesOf(() =>
      buildConfig(
        {
          ...base,
          sources: [
            { name: 'a', url: 'wis2+mqtt://h' },
            { name: 'b', url: 'wis2+mqtt://h/origin/#/x' },
            { name: 'c', url: 'wis2+mqtt://h/origin/a+b', after: 'delete' },
            { name: 'd', url: 'ftp://h/', wis2: {} },
          ],
        },
        '/',
        {},
      ),
    );
    expect(issues).toEqual([
      expect.stringMatching(/^sources\[0\]\.url: give the topic filter after the broker/),
      expect.stringMatching(/^sources\[1\]\.url: "origin\/#\/x" is not an MQTT topic filter/),
      expect.stringMatching(/^sources\[2\]\.url: "origin\/a\+b" is not an MQTT topic filter/),
      expect.stringMatching(/^sources\[2\]\.after: a WIS2 subscription cannot delete or move files/),
      expect.stringMatching(/^sources\[3\]\.wis2: applies to wis2\+mqtt\(s\) sources only/),
    ]);
  });

  it('names a missing environment variable and refuses a password in the URL without echoing it', () => {
    const issues = issuesOf(() =>
      buildConfig({ ...base, sources: [...base.sources, { name: 'b', url: 'ftp://u:hunter2@h/' }] }, '/', {}),
    );
    expect(issues.join('\n')).toContain('environment variable RADAR_PW is not set');
    expect(issues.join('\n')).toContain('sources[1].url: the URL contains a password');
    expect(issues.join('\n')).not.toContain('hunter2');
  });

  it('reads passwordFile relative to the config file, trimming the final newline', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-cfg-'));
    writeFileSync(path.join(dir, 'pw'), 'from-file\n');
    writeFileSync(
      path.join(dir, 'poller.yaml'),
      'landing: ./landing\nledger: ./l.db\nsources:\n  - name: a\n    url: sftp://u@h/data\n    passwordFile: ./pw\n',
    );
    const c = loadConfig(path.join(dir, 'poller.yaml'), {});
    expect(c.sources[0]!.password).toBe('from-file');
    expect(issuesOf(() => loadConfig(path.join(dir, 'missing.yaml'), {}))[0]).toMatch(/cannot read the config file/);
  });

  it('reads expectEvery, the http defaults, and the status page credentials from their files', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-http-auth-'));
    writeFileSync(path.join(dir, 'pw'), 'page-password\n');
    writeFileSync(path.join(dir, 'token'), 'page-token');
    const src = { ...base.sources[0], expectEvery: '5m' };
    const c = buildConfig(
      {
        ...base,
        sources: [src],
        http: { port: 9464, auth: { user: 'operator', passwordFile: 'pw', tokenFile: 'token' } },
      },
      dir,
      { RADAR_PW: 'x' },
    );
    expect(c.sources[0]?.expectEveryMs).toBe(300_000);
    expect(c.http).toEqual({
      host: '127.0.0.1',
      port: 9464,
      refreshMs: 5000,
      auth: { basic: { user: 'operator', password: 'page-password' }, token: 'page-token' },
    });
    const bad = (auth: Record<string, unknown>) =>
      issuesOf(() => buildConfig({ ...base, http: { port: 1, auth } }, dir, { RADAR_PW: 'x' }));
    expect(bad({ user: 'operator' })).toEqual(['http.auth: give both user and passwordFile for basic auth']);
    expect(bad({})).toEqual(['http.auth: give user + passwordFile, tokenFile, or both']);
    expect(bad({ tokenFile: 'nope' })[0]).toMatch(/^http\.auth\.tokenFile: cannot read .*nope \(ENOENT\)/);
  });
});
