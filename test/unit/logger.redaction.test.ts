import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, SECRET_FIELDS } from '../../src/observe/logger.js';
import { redactUrl } from '../../src/util/redact-url.js';

function collectingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
      callback();
    },
  });
  const log = createLogger({ level: 'debug', destination });
  return { log, lines };
}

describe('createLogger', () => {
  it('writes one JSON object per event with the bound fields', () => {
    const { log, lines } = collectingLogger();
    log.child({ source: 'radar-north' }).info({ event: 'file.fetched', path: 'a/b.bufr', durationMs: 12 }, 'fetched');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      source: 'radar-north',
      event: 'file.fetched',
      path: 'a/b.bufr',
      durationMs: 12,
      msg: 'fetched',
    });
  });

  it('redacts every secret field at the top level and nested a few levels down', () => {
    const { log, lines } = collectingLogger();
    for (const field of SECRET_FIELDS) {
      log.info({
        [field]: 'top-secret',
        options: { [field]: 'top-secret' },
        source: { tls: { [field]: 'top-secret' } },
        err: { cause: { options: { [field]: 'top-secret' } } },
        list: [{ [field]: 'top-secret' }],
      });
    }
    expect(lines).toHaveLength(SECRET_FIELDS.length);
    const text = JSON.stringify(lines);
    expect(text).not.toContain('top-secret');
    expect(text).toContain('[Redacted]');
  });

  it('redacts secrets in child bindings', () => {
    const { log, lines } = collectingLogger();
    log.child({ source: 'x', auth: { password: 'hunter2' } }).warn('bound');
    expect(JSON.stringify(lines)).not.toContain('hunter2');
  });

  it('keeps fields that only resemble secret names', () => {
    const { log, lines } = collectingLogger();
    log.info({ passwordFile: '/run/credentials/poller.service/radar', keys: 3 });
    expect(lines[0]).toMatchObject({ passwordFile: '/run/credentials/poller.service/radar', keys: 3 });
  });

  it('serialises errors under err with their cause', () => {
    const { log, lines } = collectingLogger();
    log.error({ err: new Error('outer', { cause: new Error('inner') }) }, 'failed');
    const { err } = lines[0] as { err: { message: string; cause?: { message: string } } };
    expect(err.message).toBe('outer');
    expect(err.cause?.message).toBe('inner');
  });
});

describe('redactUrl', () => {
  it('removes user and password', () => {
    expect(redactUrl('ftps://ingest:s3cret@radar.example.org:990/out/dir')).toBe(
      'ftps://radar.example.org:990/out/dir',
    );
    expect(redactUrl('sftp://ingest@radar.example.org/data')).toBe('sftp://radar.example.org/data');
    expect(redactUrl('postgres://poller:pw@db/poller')).toBe('postgres://db/poller');
  });

  it('leaves a URL without userinfo alone', () => {
    expect(redactUrl('ftp://radar.example.org/out')).toBe('ftp://radar.example.org/out');
    expect(redactUrl('/var/lib/poller/landing')).toBe('/var/lib/poller/landing');
  });

  it('cuts userinfo from text that does not parse as a URL', () => {
    expect(redactUrl('ftp://user:pa ss@host name/x')).toBe('ftp://host name/x');
  });
});
