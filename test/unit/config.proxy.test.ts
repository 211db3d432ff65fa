import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-config-proxy-'));
const creds = path.join(dir, 'proxy.cred');
writeFileSync(creds, 'ingest:pa:ss w0rd\n');

function config(source: Record<string, unknown>) {
  return buildConfig(
    { landing: './landing', ledger: './ledger.db', sources: [{ name: 'a', url: 'ftp://h/x', ...source }] },
    dir,
    {},
  );
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('proxy: and proxyCredentialsFile', () => {
  it('reads a proxy URL, `none`, and credentials from a file (the password may hold colons)', () => {
    expect(config({ proxy: 'socks5h://proxy.example:1080' }).sources[0]?.proxy).toMatchObject({
      protocol: 'socks5h',
      host: 'proxy.example',
      port: 1080,
      from: 'proxy',
    });
    expect(config({ proxy: 'none' }).sources[0]?.proxy).toBe('none');
    expect(config({}).sources[0]?.proxy).toBeUndefined();
    const withCreds = config({ proxy: 'http://proxy.example:3128', proxyCredentialsFile: 'proxy.cred' }).sources[0];
    expect(withCreds?.proxyCredentials).toEqual({ username: 'ingest', password: 'pa:ss w0rd' });
  });

  it('refuses a password in the proxy URL, an unknown scheme and a proxy on a local directory, one line each', () => {
    const issues = issuesOf(() => config({ proxy: 'http://u:secret@p:3128' }));
    expect(issues).toEqual([expect.stringMatching(/^sources\[0\]\.proxy: .*proxyCredentialsFile/)]);
    expect(issues.join('\n')).not.toContain('secret');
    expect(issuesOf(() => config({ proxy: 'socks4://p:1080' }))).toEqual([
      expect.stringMatching(/proxy scheme "socks4" is not supported/),
    ]);
    expect(
      issuesOf(() =>
        buildConfig(
          {
            landing: './landing',
            ledger: './ledger.db',
            sources: [{ name: 'l', url: 'file:///data', proxy: 'http://p:1' }],
          },
          dir,
          {},
        ),
      ),
    ).toEqual([expect.stringMatching(/local directory is not reached through a proxy/)]);
    writeFileSync(path.join(dir, 'bad.cred'), 'no-colon\n');
    expect(issuesOf(() => config({ proxyCredentialsFile: 'bad.cred' }))).toEqual([
      expect.stringMatching(/proxyCredentialsFile: write one line user:password/),
    ]);
  });

  it('wis2+wss:// is MQTT over WebSockets with TLS on port 443', () => {
    const src = buildConfig(
      {
        landing: './landing',
        ledger: './ledger.db',
        sources: [{ name: 'gb', url: 'wis2+wss://globalbroker.example/origin/a/wis2/+/data/#' }],
      },
      dir,
      {},
    ).sources[0];
    expect(src).toMatchObject({ protocol: 'wis2+wss', port: 443, wis2: { tls: true, websocket: true } });
    expect(src?.wis2?.topic).toBe('origin/a/wis2/+/data/#');
  });
});
