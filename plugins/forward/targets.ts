/**
 * One connection to the destination server, FTP/FTPS (basic-ftp) or SFTP (ssh2), behind one
 * small interface. Foreign errors are classified here, once, into TransientError (retry) and
 * PermanentError (fail the file); above this file nobody looks at reply codes or messages.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FTPError, Client as FtpClient } from 'basic-ftp';
import type { SFTPWrapper, Client as SshClient } from 'ssh2';
import ssh2 from 'ssh2';
import { PermanentError, TransientError } from '../../src/plugins/api.js';
import type { Pooled } from './pool.js';

/** Everything needed to open a connection; secrets already read from their files. */
export interface TargetSettings {
  protocol: 'ftp' | 'ftps' | 'sftp';
  host: string;
  port: number;
  user: string;
  password?: string;
  privateKey?: Buffer;
  passphrase?: string;
  /** SFTP: expected host key fingerprint, `SHA256:base64` as OpenSSH prints it, or hex. */
  hostKey?: string;
  /** FTPS: PEM CA bundle to trust instead of the system store. */
  ca?: string;
  implicitTls: boolean;
  /** Skip TLS certificate or SSH host key verification. */
  insecure: boolean;
  connectTimeoutMs: number;
  /** Inactivity timeout of a reply or transfer. */
  idleTimeoutMs: number;
}

/** Operations on absolute remote paths. Every method may throw a classified error. */
export interface Target extends Pooled {
  /** `mkdir -p`. */
  ensureDir(dir: string, signal: AbortSignal): Promise<void>;
  exists(file: string, signal: AbortSignal): Promise<boolean>;
  upload(localPath: string, remotePath: string, signal: AbortSignal): Promise<void>;
  /** Rename; fails (classified) when the server refuses, e.g. because `to` exists. */
  rename(from: string, to: string, signal: AbortSignal): Promise<void>;
  /** Delete a file; one that is not there is not an error. */
  remove(file: string, signal: AbortSignal): Promise<void>;
}

export async function openTarget(settings: TargetSettings, signal: AbortSignal): Promise<Target> {
  return settings.protocol === 'sftp' ? openSftp(settings, signal) : openFtp(settings, signal);
}

/**
 * Run `op`; an abort closes the connection (the only way to stop basic-ftp or ssh2 mid-task)
 * and rejects at once: ssh2 does not always fail pending SFTP requests when its socket goes.
 */
async function abortable<T>(target: { destroy(): void }, signal: AbortSignal, op: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  const abortedError = () =>
    new TransientError('FORWARD_ABORTED', 'upload stopped: the run was aborted', { cause: signal.reason });
  let onAbort = () => {};
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      target.destroy();
      reject(abortedError());
    };
  });
  signal.addEventListener('abort', onAbort, { once: true });
  const running = op();
  // Whatever the destroyed connection does later must not surface as an unhandled rejection.
  running.catch(() => {});
  try {
    return await Promise.race([running, aborted]);
  } catch (err) {
    if (signal.aborted) throw abortedError();
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------- FTP / FTPS

async function openFtp(settings: TargetSettings, signal: AbortSignal): Promise<Target> {
  const client = new FtpClient(settings.idleTimeoutMs);
  let broken = false;
  const destroy = () => {
    broken = true;
    client.close();
  };
  const run = async <T>(signal: AbortSignal, what: string, target: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await abortable({ destroy }, signal, op);
    } catch (err) {
      // After an FTPError the control connection is still in a known state; after anything else it is not.
      if (!(err instanceof FTPError)) destroy();
      throw classifyFtp(err, what, target);
    }
  };

  let timedOut = false;
  const connectTimer = setTimeout(() => {
    timedOut = true;
    destroy();
  }, settings.connectTimeoutMs);
  try {
    await run(signal, 'connect', `${settings.host}:${settings.port}`, () =>
      client.access({
        host: settings.host,
        port: settings.port,
        user: settings.user,
        password: settings.password ?? '',
        secure: settings.protocol === 'ftps' ? (settings.implicitTls ? 'implicit' : true) : false,
        secureOptions: {
          ...(settings.ca === undefined ? {} : { ca: settings.ca }),
          rejectUnauthorized: !settings.insecure,
        },
      }),
    );
  } catch (err) {
    destroy();
    if (timedOut) {
      throw new TransientError(
        'FORWARD_CONNECT_TIMEOUT',
        `connect ${settings.host}:${settings.port}: no answer within ${settings.connectTimeoutMs} ms`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    clearTimeout(connectTimer);
  }

  return {
    get broken() {
      return broken || client.closed;
    },
    close: () => client.close(),
    async ensureDir(dir, signal) {
      await run(signal, 'mkdir', dir, () => client.ensureDir(dir));
    },
    async exists(file, signal) {
      try {
        await run(signal, 'size', file, () => client.size(file));
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async upload(localPath, remotePath, signal) {
      const source = createReadStream(localPath);
      try {
        await run(signal, 'upload', remotePath, () => client.uploadFrom(source, remotePath));
      } finally {
        source.destroy();
      }
    },
    async rename(from, to, signal) {
      await run(signal, 'rename', to, () => client.rename(from, to));
    },
    async remove(file, signal) {
      try {
        await run(signal, 'delete', file, () => client.remove(file));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}

function isNotFound(err: unknown): boolean {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof FTPError ? cause.code === 550 : (cause as { code?: unknown })?.code === SFTP_NO_SUCH_FILE;
}

function classifyFtp(err: unknown, what: string, target: string): Error {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  if (err instanceof FTPError) {
    const reply = `${what} ${target}: server replied ${err.code}`;
    if (err.code === 530) {
      return new PermanentError('FORWARD_LOGIN_REJECTED', `${reply} (login rejected); check user and password`, {
        cause: err,
      });
    }
    // 4xx is "try again later"; 552 (storage exceeded) tends to clear up the same way.
    if (err.code < 500 || err.code === 552) return new TransientError('FORWARD_SERVER_BUSY', reply, { cause: err });
    return new PermanentError('FORWARD_REJECTED', reply, { cause: err });
  }
  return classifySocket(err, what, target);
}

function classifySocket(err: unknown, what: string, target: string): Error {
  const code = String((err as { code?: unknown })?.code ?? '');
  const message = err instanceof Error ? err.message : String(err);
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return new PermanentError(
      'FORWARD_TLS_FAILED',
      `${what} ${target}: TLS verification failed (${code}); set ca to the server's CA file`,
      { cause: err },
    );
  }
  // basic-ftp reports its inactivity timeout as a plain Error "Timeout (control socket)" or "(data socket)".
  if (code === '' && /^Timeout \((control|data) socket\)/.test(message)) {
    return new TransientError('FORWARD_TIMEOUT', `${what} ${target}: ${message}; the connection was closed`, {
      cause: err,
    });
  }
  if (code === 'ENOTFOUND') {
    return new PermanentError('FORWARD_HOST_UNKNOWN', `${what} ${target}: host not found; check the url`, {
      cause: err,
    });
  }
  return new TransientError('FORWARD_CONNECTION_FAILED', `${what} ${target}: ${code || message}`, { cause: err });
}

// ---------------------------------------------------------------- SFTP

// ssh2 SFTP status codes (draft-ietf-secsh-filexfer-02 §7).
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
const SFTP_NO_CONNECTION = 6;
const SFTP_CONNECTION_LOST = 7;

/** `SHA256:base64` (OpenSSH), plain base64, or hex with or without colons → comparable form. */
export function normaliseFingerprint(text: string): string {
  const t = text.trim().replace(/^SHA256:/i, '');
  if (/^[0-9a-f]{2}(:?[0-9a-f]{2}){31}$/i.test(t)) {
    return Buffer.from(t.replaceAll(':', ''), 'hex').toString('base64').replace(/=+$/, '');
  }
  return t.replace(/=+$/, '');
}

/** The OpenSSH-style SHA-256 fingerprint of a raw public host key. */
export function fingerprintOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

async function openSftp(settings: TargetSettings, signal: AbortSignal): Promise<Target> {
  const conn: SshClient = new ssh2.Client();
  let broken = false;
  let hostKeyMismatch: string | undefined;
  const destroy = () => {
    broken = true;
    conn.destroy();
  };
  conn.on('close', () => {
    broken = true;
  });
  // Errors after connect surface through the pending SFTP callbacks; keep the emitter quiet.
  conn.on('error', () => {
    broken = true;
  });

  const where = `${settings.host}:${settings.port}`;
  const sftp = await abortable({ destroy }, signal, async () => {
    try {
      await new Promise<void>((resolve, reject) => {
        conn.once('ready', resolve);
        conn.once('error', reject);
        conn.connect({
          host: settings.host,
          port: settings.port,
          username: settings.user,
          ...(settings.password === undefined ? {} : { password: settings.password }),
          ...(settings.privateKey === undefined ? {} : { privateKey: settings.privateKey }),
          ...(settings.passphrase === undefined ? {} : { passphrase: settings.passphrase }),
          readyTimeout: settings.connectTimeoutMs,
          keepaliveInterval: 15_000,
          hostVerifier: (key: Buffer) => {
            if (settings.insecure || settings.hostKey === undefined) return true;
            const seen = fingerprintOf(key);
            if (seen === normaliseFingerprint(settings.hostKey)) return true;
            hostKeyMismatch = seen;
            return false;
          },
        });
      });
      return await new Promise<SFTPWrapper>((resolve, reject) => {
        conn.sftp((err, wrapper) => (err ? reject(err) : resolve(wrapper)));
      });
    } catch (err) {
      destroy();
      if (hostKeyMismatch !== undefined) {
        throw new PermanentError(
          'FORWARD_HOST_KEY_MISMATCH',
          `connect ${where}: host key SHA256:${hostKeyMismatch} does not match hostKey; verify it with the server's admin`,
          { cause: err },
        );
      }
      throw classifySftp(err, 'connect', where);
    }
  });

  /**
   * One SFTP operation, bounded by `signal` and by the idle timeout: ssh2 has no reply timeout,
   * and keepalives only notice a dead peer, not a live server that stops answering.
   */
  const withIdleTimeout = async <T>(
    what: string,
    target: string,
    signal: AbortSignal,
    op: (signal: AbortSignal, progressed: () => void) => Promise<T>,
  ): Promise<T> => {
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), settings.idleTimeoutMs);
    const progressed = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), settings.idleTimeoutMs);
    };
    const both = AbortSignal.any([signal, idle.signal]);
    try {
      return await abortable({ destroy }, both, () => op(both, progressed));
    } catch (err) {
      const code = (err as { cause?: { code?: unknown } }).cause?.code;
      if (code === SFTP_NO_CONNECTION || code === SFTP_CONNECTION_LOST || err instanceof TransientError) broken = true;
      if (idle.signal.aborted && !signal.aborted) {
        throw new TransientError(
          'FORWARD_TIMEOUT',
          `${what} ${target}: no answer for ${settings.idleTimeoutMs} ms; the connection was closed`,
          { cause: err },
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  const call = <T>(
    what: string,
    target: string,
    signal: AbortSignal,
    op: (done: (err?: Error | null, value?: T) => void) => void,
  ) =>
    withIdleTimeout(
      what,
      target,
      signal,
      () =>
        new Promise<T>((resolve, reject) => {
          op((err, value) => (err ? reject(classifySftp(err, what, target)) : resolve(value as T)));
        }),
    );

  const isDir = async (dir: string, signal: AbortSignal): Promise<boolean | undefined> => {
    try {
      const stats = await call<{ isDirectory(): boolean }>('stat', dir, signal, (done) => sftp.stat(dir, done));
      return stats.isDirectory();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  return {
    get broken() {
      return broken;
    },
    close: () => conn.end(),
    async ensureDir(dir, signal) {
      const parts = path.posix
        .normalize(dir)
        .split('/')
        .filter((p) => p !== '');
      let current = dir.startsWith('/') ? '' : '.';
      for (const part of parts) {
        current = `${current}/${part}`;
        const state = await isDir(current, signal);
        if (state === true) continue;
        if (state === false) {
          throw new PermanentError('FORWARD_NOT_A_DIRECTORY', `mkdir ${current}: exists and is not a directory`);
        }
        try {
          await call<void>('mkdir', current, signal, (done) => sftp.mkdir(current, done));
        } catch (err) {
          // Another connection of the pool may have made it in the meantime.
          if ((await isDir(current, signal)) !== true) throw err;
        }
      }
    },
    async exists(file, signal) {
      return (await isDir(file, signal)) !== undefined;
    },
    async upload(localPath, remotePath, signal) {
      await withIdleTimeout('upload', remotePath, signal, async (both, progressed) => {
        // The local stream only flows while the server acknowledges writes: its data events are progress.
        const source = createReadStream(localPath).on('data', progressed);
        try {
          await pipeline(source, sftp.createWriteStream(remotePath), { signal: both });
        } catch (err) {
          throw classifySftp(err, 'upload', remotePath);
        }
      });
    },
    async rename(from, to, signal) {
      await call<void>('rename', to, signal, (done) => sftp.rename(from, to, done));
    },
    async remove(file, signal) {
      try {
        await call<void>('delete', file, signal, (done) => sftp.unlink(file, done));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}

function classifySftp(err: unknown, what: string, target: string): Error {
  if (err instanceof TransientError || err instanceof PermanentError) return err;
  const e = err as { code?: unknown; level?: unknown };
  if (e.level === 'client-authentication') {
    return new PermanentError(
      'FORWARD_LOGIN_REJECTED',
      `${what} ${target}: login rejected; check user, password or key`,
      {
        cause: err,
      },
    );
  }
  if (typeof e.code === 'number') {
    const message = err instanceof Error ? err.message : String(err);
    if (e.code === SFTP_NO_CONNECTION || e.code === SFTP_CONNECTION_LOST) {
      return new TransientError('FORWARD_CONNECTION_FAILED', `${what} ${target}: ${message}`, { cause: err });
    }
    const code = e.code === SFTP_PERMISSION_DENIED ? 'FORWARD_PERMISSION_DENIED' : 'FORWARD_REJECTED';
    return new PermanentError(code, `${what} ${target}: ${message}`, { cause: err });
  }
  return classifySocket(err, what, target);
}
