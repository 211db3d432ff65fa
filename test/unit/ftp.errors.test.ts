import { FTPError } from 'basic-ftp';
import { describe, expect, it } from 'vitest';
import { PermanentError, SourceError, ThrottledError, TransientError } from '../../src/errors.js';
import {
  classifyFtpError,
  FingerprintMismatchError,
  FtpTimeoutError,
  isConnectionStillUsable,
} from '../../src/sources/ftp/errors.js';

const ctx = { source: 'radar-north', operation: 'download' as const, path: 'a/b.bufr', password: 's3cret-pw' };
const reply = (code: number, text: string): FTPError => new FTPError({ code, message: `${code} ${text}` });
const sys = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('classifyFtpError', () => {
  it('a refused connection pauses the source when connecting, and is retried on a data connection', () => {
    const connect = classifyFtpError(sys('ECONNREFUSED'), { ...ctx, operation: 'connect' });
    expect(connect).toBeInstanceOf(SourceError);
    expect(connect.code).toBe('POLLER_FTP_CONNECTION_REFUSED');
    expect(classifyFtpError(sys('ECONNREFUSED'), ctx).code).toBe('POLLER_FTP_DATA_REFUSED');
  });

  it.each([
    [reply(421, 'Too many connections'), ThrottledError, 'POLLER_FTP_THROTTLED'],
    [reply(530, 'Login incorrect.'), SourceError, 'POLLER_FTP_LOGIN_REJECTED'],
    [reply(425, "Can't open data connection"), TransientError, 'POLLER_FTP_REPLY_TRANSIENT'],
    [reply(450, 'File busy'), TransientError, 'POLLER_FTP_REPLY_TRANSIENT'],
    [reply(550, 'No such file'), PermanentError, 'POLLER_FTP_NOT_AVAILABLE'],
    [reply(553, 'Not allowed'), PermanentError, 'POLLER_FTP_NOT_AVAILABLE'],
    [reply(504, 'Not implemented for that parameter'), PermanentError, 'POLLER_FTP_REPLY_PERMANENT'],
    [sys('ECONNRESET', 'read ECONNRESET (data socket)'), TransientError, 'POLLER_FTP_CONNECTION_LOST'],
    [new Error('Timeout (data socket)'), TransientError, 'POLLER_FTP_TIMEOUT'],
    [
      new Error('Server sent FIN packet unexpectedly, closing connection.'),
      TransientError,
      'POLLER_FTP_CONNECTION_LOST',
    ],
    [new FtpTimeoutError('no answer'), TransientError, 'POLLER_FTP_TIMEOUT'],
    [sys('ENOTFOUND'), SourceError, 'POLLER_FTP_HOST_UNKNOWN'],
    [sys('ECONNREFUSED'), TransientError, 'POLLER_FTP_DATA_REFUSED'],
    [sys('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'), SourceError, 'POLLER_FTP_TLS_REJECTED'],
    [sys('ERR_TLS_CERT_ALTNAME_INVALID'), SourceError, 'POLLER_FTP_TLS_REJECTED'],
    [sys('ERR_SSL_WRONG_VERSION_NUMBER'), SourceError, 'POLLER_FTP_TLS_FAILED'],
    [new FingerprintMismatchError('AA:BB'), SourceError, 'POLLER_FTP_TLS_REJECTED'],
    [new Error('something new'), TransientError, 'POLLER_FTP_FAILED'],
  ])('%s -> %o %s', (input, cls, code) => {
    const out = classifyFtpError(input, ctx);
    expect(out).toBeInstanceOf(cls);
    expect(out.code).toBe(code);
    expect(out.cause).toBe(input);
    expect(out.message).toContain('radar-north');
    expect(out.message).not.toMatch(/[\r\n]/);
  });

  it('treats "too many connections" text as throttling whatever the code', () => {
    expect(classifyFtpError(reply(530, 'Sorry, too many users'), ctx)).toBeInstanceOf(ThrottledError);
  });

  it('never carries the password, even when a server echoes it in a multi-line reply', () => {
    const out = classifyFtpError(reply(530, 'bad PASS s3cret-pw\r\n530 Login incorrect'), {
      ...ctx,
      operation: 'login',
    });
    expect(out.message).not.toContain('s3cret-pw');
    expect(out.message).not.toMatch(/[\r\n]/);
  });

  it('passes poller errors through', () => {
    const original = new PermanentError('POLLER_FTP_PATH_INVALID', 'x');
    expect(classifyFtpError(original, ctx)).toBe(original);
  });
});

describe('isConnectionStillUsable', () => {
  it('is true after an FTP reply error except 421, false after anything else', () => {
    expect(isConnectionStillUsable(reply(550, 'x'))).toBe(true);
    expect(isConnectionStillUsable(reply(421, 'bye'))).toBe(false);
    expect(isConnectionStillUsable(new Error('Timeout (control socket)'))).toBe(false);
  });
});
