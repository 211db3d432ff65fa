import { readFile } from 'node:fs/promises';
import type { ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';
import type { PollerError } from '../../errors.js';
import { openTunnel, proxyFor } from '../proxy/source-proxy.js';
import type { SourceConnectOptions } from '../source.js';
import {
  channelRefusedError,
  classifySftpError,
  droppedBeforeHandshakeError,
  hostKeyInvalidError,
  hostKeyMismatchError,
  hostKeyNotConfiguredError,
  hostKeyUnknownError,
  knownHostsUnreadableError,
  privateKeyUnreadableError,
} from './errors.js';
import {
  entriesForHost,
  type HostKeyVerdict,
  type KnownHostEntry,
  matchesFingerprint,
  parseFingerprint,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  sha256Fingerprint,
  verifyKnownHost,
} from './host-key.js';
import type { PoolMember } from './session-pool.js';

/** How the server's host key is checked; decided once from the options. */
export type HostCheck =
  | { readonly kind: 'fingerprint'; readonly digest: Buffer }
  | { readonly kind: 'known-hosts'; readonly file: string }
  | { readonly kind: 'insecure' };

/** Host key algorithms ssh2 can verify, in its default order of preference. */
const SUPPORTED_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/** SSH keepalives find a dead idle connection before a transfer is handed to it. */
const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 3;

/**
 * Decides the host key check from the options, or the SourceError that refuses to connect:
 * verification is on unless `tls.insecure` is set.
 */
export function resolveHostCheck(opts: SourceConnectOptions): HostCheck | SourceErrorResult {
  if (opts.hostKey !== undefined && opts.hostKey.trim() !== '') {
    const digest = parseFingerprint(opts.hostKey);
    if (digest === undefined) return { error: hostKeyInvalidError(opts.name) };
    return { kind: 'fingerprint', digest };
  }
  if (opts.knownHosts !== undefined && opts.knownHosts !== '') return { kind: 'known-hosts', file: opts.knownHosts };
  if (opts.tls.insecure) return { kind: 'insecure' };
  return { error: hostKeyNotConfiguredError(opts.name) };
}

/** A configuration problem found before any connection is tried. */
export interface SourceErrorResult {
  readonly error: PollerError;
}

/** One SSH connection carrying one SFTP channel. */
export interface SftpSession extends PoolMember {
  readonly id: number;
  readonly sftp: SFTPWrapper;
}

/** Opens an SSH connection, verifies the host key, logs in and starts the SFTP subsystem. */
export async function openSftpSession(
  opts: SourceConnectOptions,
  hostCheck: HostCheck,
  id: number,
  signal: AbortSignal,
): Promise<SftpSession> {
  signal.throwIfAborted();
  const hostPort = `${opts.host}:${opts.port}`;
  const knownEntries = await readKnownEntries(opts, hostCheck);
  const verifier = createHostVerifier(opts, hostCheck, knownEntries);
  const config = connectConfig(opts, knownEntries, verifier.verify);
  const proxy = proxyFor(opts, 'sftp', opts.host, opts.port);
  // Through a proxy, ssh2 runs over the tunnel (`sock`); the host key check is the same.
  if (proxy !== undefined) config.sock = await openTunnel(opts, proxy, opts.host, opts.port, signal);
  const client = new ssh2.Client();
  const life = trackLife(client, opts, id);
  try {
    const sftp = await startSftp(client, config, opts, hostPort, verifier, signal);
    (sftp as unknown as ClientChannel).on('close', life.die);
    sftp.on('error', life.die);
    return {
      id,
      sftp,
      isAlive: life.isAlive,
      destroy: () => {
        life.die();
        client.destroy();
      },
      onDeath: life.onDeath,
    };
  } catch (err) {
    config.sock?.destroy();
    throw err;
  }
}

async function readKnownEntries(opts: SourceConnectOptions, hostCheck: HostCheck): Promise<KnownHostEntry[]> {
  if (hostCheck.kind !== 'known-hosts') return [];
  try {
    return entriesForHost(parseKnownHosts(await readFile(hostCheck.file, 'utf8')), opts.host, opts.port);
  } catch (err) {
    throw knownHostsUnreadableError(opts.name, hostCheck.file, err);
  }
}

/** ssh2's host verifier, and the verdict it reached (read once the handshake failed or passed). */
interface HostVerifier {
  verify(keyBlob: Buffer): boolean;
  verdict(): { kind: HostKeyVerdict; fingerprint: string } | undefined;
}

function createHostVerifier(
  opts: SourceConnectOptions,
  hostCheck: HostCheck,
  knownEntries: KnownHostEntry[],
): HostVerifier {
  let verdict: { kind: HostKeyVerdict; fingerprint: string } | undefined;
  const verify = (keyBlob: Buffer): boolean => {
    const fingerprint = sha256Fingerprint(keyBlob);
    let kind: HostKeyVerdict;
    if (hostCheck.kind === 'fingerprint') kind = matchesFingerprint(keyBlob, hostCheck.digest) ? 'match' : 'mismatch';
    else if (hostCheck.kind === 'known-hosts') kind = verifyKnownHost(knownEntries, opts.host, opts.port, keyBlob);
    else {
      kind = 'match';
      opts.log.warn(
        { event: 'source.insecure', source: opts.name, host: `${opts.host}:${opts.port}`, fingerprint },
        'sftp host key not verified (insecure: true)',
      );
    }
    verdict = { kind, fingerprint };
    return kind === 'match';
  };
  return { verify, verdict: () => verdict };
}

function connectConfig(
  opts: SourceConnectOptions,
  knownEntries: KnownHostEntry[],
  hostVerifier: (keyBlob: Buffer) => boolean,
): ConnectConfig {
  const config: ConnectConfig = {
    host: opts.host,
    port: opts.port,
    username: opts.user,
    readyTimeout: opts.connectTimeoutMs,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    hostVerifier,
  };
  if (opts.password !== undefined) {
    config.password = opts.password;
    // Servers that check passwords through PAM often offer only keyboard-interactive.
    config.tryKeyboard = true;
  }
  if (opts.privateKey !== undefined) {
    config.privateKey = opts.privateKey;
    if (opts.passphrase !== undefined) config.passphrase = opts.passphrase;
  }
  const preferred = preferredHostKeyAlgorithms(knownEntries).filter((a) => SUPPORTED_HOST_KEY_ALGORITHMS.includes(a));
  if (preferred.length > 0) {
    config.algorithms = {
      serverHostKey: [...preferred, ...SUPPORTED_HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))],
    } as ConnectConfig['algorithms'];
  }
  return config;
}

/** Whether the connection is alive, and who to tell when it dies. */
function trackLife(client: ssh2.Client, opts: SourceConnectOptions, id: number) {
  let alive = true;
  const deathListeners: (() => void)[] = [];
  const die = (): void => {
    if (!alive) return;
    alive = false;
    for (const l of deathListeners.splice(0)) l();
  };
  // Errors after the session is up are seen by the request that fails; this listener keeps an
  // 'error' event from crashing the process and marks the session dead.
  client.on('error', (err: unknown) => {
    opts.log.debug({ event: 'source.connection_error', source: opts.name, session: id, err }, 'sftp connection error');
    die();
  });
  client.on('close', die);
  client.on('end', die);
  let keyboardRounds = 0;
  client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => {
    // The password answers a password prompt; a server that keeps asking gets nothing more.
    keyboardRounds += 1;
    finish(keyboardRounds <= 2 && opts.password !== undefined ? prompts.map(() => opts.password ?? '') : []);
  });
  return {
    die,
    isAlive: () => alive,
    onDeath: (listener: () => void) => {
      if (alive) deathListeners.push(listener);
      else listener();
    },
  };
}

/** Connects, logs in and opens the SFTP channel; every failure comes out classified. */
function startSftp(
  client: ssh2.Client,
  config: ConnectConfig,
  opts: SourceConnectOptions,
  hostPort: string,
  verifier: HostVerifier,
  signal: AbortSignal,
): Promise<SFTPWrapper> {
  const errCtx = { source: opts.name, hostPort, secrets: [opts.password, opts.passphrase] };
  let handshakeDone = false;
  client.once('handshake', () => {
    handshakeDone = true;
  });
  return new Promise<SFTPWrapper>((resolve, reject) => {
    let settled = false;
    let channelTimer: NodeJS.Timeout | undefined;
    const finish = (err: unknown, value?: SFTPWrapper): void => {
      if (settled) return;
      settled = true;
      clearTimeout(channelTimer);
      signal.removeEventListener('abort', onAbort);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (err !== undefined) {
        client.destroy();
        reject(err);
      } else resolve(value!);
    };
    const hostKeyError = (): PollerError | undefined => {
      const verdict = verifier.verdict();
      if (verdict === undefined || verdict.kind === 'match') return undefined;
      if (verdict.kind === 'unknown') return hostKeyUnknownError(opts.name, hostPort, verdict.fingerprint);
      return hostKeyMismatchError(opts.name, hostPort, verdict.fingerprint, verdict.kind === 'revoked');
    };
    const onError = (err: unknown): void => {
      const level = (err as { level?: unknown } | null)?.level;
      if (!handshakeDone && level === 'protocol' && verifier.verdict() === undefined) {
        finish(droppedBeforeHandshakeError(opts.name, hostPort, err));
      } else {
        finish(hostKeyError() ?? classifySftpError(err, errCtx));
      }
    };
    const onClose = (): void =>
      finish(hostKeyError() ?? classifySftpError(new Error('connection closed during login'), errCtx));
    const onAbort = (): void => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    client.on('error', onError);
    client.on('close', onClose);
    client.once('ready', () => {
      // readyTimeout covers the handshake and login; the SFTP channel gets the same budget.
      channelTimer = setTimeout(
        () =>
          finish(classifySftpError(Object.assign(new Error('no SFTP channel'), { level: 'client-timeout' }), errCtx)),
        opts.connectTimeoutMs,
      );
      client.sftp((err: Error | undefined, channel: SFTPWrapper) => {
        if (err !== undefined) {
          const reason = (err as { reason?: unknown }).reason;
          finish(
            typeof reason === 'number' ? channelRefusedError(opts.name, hostPort, err) : classifySftpError(err, errCtx),
          );
        } else finish(undefined, channel);
      });
    });
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 parses the private key synchronously: a wrong passphrase surfaces here.
      finish(privateKeyUnreadableError(opts.name, err));
    }
  });
}
