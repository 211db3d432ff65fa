/**
 * A WIS2 subscription as a source (`wis2+mqtt://broker/<topic filter>`): a push-style source.
 *
 * The MQTT client holds a persistent session (stable client id, clean=false, QoS 1), so the
 * broker keeps what is published while poller is down and delivers it at the next connect. Each
 * usable WIS2 Notification Message is written to the journal (fsynced) before its PUBACK, then
 * joins the pending set; `list` shows the pending set as a tree of `data_id` paths, each file
 * versioned by its `pubtime` and sized by its link `length` (or a HEAD), and `download` fetches
 * the link through the HTTP source (status, length, resume, never an error page). The ledger
 * dedupes versions; the engine checks `integrity` over the landed bytes before the rename. A
 * version the ledger has finished with leaves the pending set at the next listing.
 */
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { IClientOptions, MqttClient } from 'mqtt';
import { ChangedError, errorCode, PermanentError, TransientError } from '../../errors.js';
import { createHttpSource } from '../http/http-source.js';
import { connectMqtt } from '../proxy/mqtt-connect.js';
import type {
  DownloadOptions,
  Integrity,
  Listing,
  ListOptions,
  RemoteEntry,
  Source,
  SourceConnectOptions,
  WatchOptions,
  Wis2Settings,
} from '../source.js';
import { Journal, type JournalEntry, type JournalLine } from './journal.js';
import { type Notification, parseNotification } from './notification.js';

/** Pending notifications held at most: past this the oldest is dropped, with a warning. */
const MAX_PENDING = 100_000;
/** Download origins with an open connection pool at most; the least recently used one is closed. */
const MAX_ORIGINS = 32;
/** Reconnect interval after the broker went away (mqtt.js retries on its own). */
const RECONNECT_MS = 2_000;

/**
 * Journals in use in this process, with the close of their holder. A reload opens the new source
 * before the old one closes; both share the client id (the broker would bounce the session
 * between them) and the journal, so the new one starts only once the old one has closed.
 */
const holders = new Map<string, Promise<void>>();

interface Pending {
  entry: JournalEntry;
  /** Size from a HEAD, when the notification gave no `length`. */
  headSize?: number;
}

export function createWis2Source(opts: SourceConnectOptions): Source {
  if (!opts.wis2) throw new Error('wis2 source without wis2 settings');
  const settings: Wis2Settings = opts.wis2;
  const scheme = settings.websocket ? 'wss' : settings.tls ? 'mqtts' : 'mqtt';
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const brokerUrl = `${scheme}://${host}:${opts.port}${settings.websocket ? '/mqtt' : ''}`;
  const displayUrl = `wis2+${scheme}://${host}:${opts.port}/${settings.topic}`;
  const log = opts.log;
  const journalFile = path.join(opts.stateDir ?? '.', 'wis2', `${opts.name}.jsonl`);
  const pending = new Map<string, Pending>();
  /** Message ids and (path, digest) pairs already taken, for the keep window: re-deliveries and re-publications. */
  const seenIds = new Map<string, number>();
  const seenContent = new Map<string, number>();
  const listeners = new Set<() => void>();
  const origins = new Map<string, Source>();
  let journal: Journal | undefined;
  let client: MqttClient | undefined;
  let startup: Promise<void> | undefined;
  let closed = false;
  let releaseHold: (() => void) | undefined;
  let brokerDown = false;
  let lastBrokerError: string | undefined;
  /** The pending set as directories → entries, rebuilt at each listing of the root. */
  let tree: Map<string, RemoteEntry[]> | undefined;

  const contentKey = (e: Pick<JournalEntry, 'path' | 'method' | 'digest'>) =>
    e.digest === undefined ? undefined : `${e.path}\0${e.method}:${e.digest}`;

  /** Applies one journal line to the in-memory state (replay and live messages alike). */
  function apply(line: JournalLine): void {
    if (line.t === 'd') {
      const p = pending.get(line.path);
      if (p && p.entry.mtimeMs === line.mtimeMs) pending.delete(line.path);
      return;
    }
    seenIds.set(line.id, line.at);
    const key = contentKey(line);
    if (key) seenContent.set(key, line.at);
    const current = pending.get(line.path);
    // An older version arriving late is not wanted: the landing holds one version per path.
    if (current && current.entry.mtimeMs >= line.mtimeMs) return;
    pending.delete(line.path);
    pending.set(line.path, { entry: line });
    if (pending.size > MAX_PENDING) {
      const [oldest] = pending.keys();
      if (oldest !== undefined) {
        pending.delete(oldest);
        log.warn(
          { event: 'wis2.pending_dropped', path: oldest, pending: MAX_PENDING },
          `more than ${MAX_PENDING} notifications pending: the oldest (${oldest}) is dropped`,
        );
      }
    }
  }

  function expire(nowMs: number): void {
    for (const m of [seenIds, seenContent]) {
      for (const [k, at] of m) {
        if (nowMs - at < settings.keepMs) break; // insertion order is arrival order
        m.delete(k);
      }
    }
    for (const [p, { entry }] of pending) {
      if (nowMs - entry.at < settings.keepMs) continue;
      pending.delete(p);
      log.warn(
        { event: 'wis2.notification_expired', path: p },
        `notification for ${p} expired after the keep window without a fetch`,
      );
    }
  }

  /** Undoes `apply` of a notification that could not be made durable: its re-delivery is taken. */
  function forget(e: JournalEntry): void {
    seenIds.delete(e.id);
    const key = contentKey(e);
    if (key) seenContent.delete(key);
    if (pending.get(e.path)?.entry === e) pending.delete(e.path);
    tree = undefined;
  }

  /** Handles one message; rejects only when it could not be made durable (then it is not acknowledged). */
  async function onNotification(topic: string, payload: Buffer): Promise<void> {
    const parsed = parseNotification(payload);
    if (!parsed.ok) {
      log.warn(
        { event: 'wis2.invalid_notification', topic, reason: parsed.reason },
        `WIS2 notification on ${topic} skipped: ${parsed.reason}`,
      );
      return;
    }
    const n: Notification = parsed.notification;
    const now = Date.now();
    const entry: JournalEntry = {
      t: 'n',
      at: now,
      id: n.id,
      path: n.path,
      href: n.href,
      mtimeMs: n.pubtimeMs,
      ...(n.length !== undefined && { size: n.length }),
      ...(n.integrity && { method: n.integrity.method, digest: n.integrity.digest.toString('base64') }),
    };
    const key = contentKey(entry);
    const current = pending.get(n.path);
    if (
      seenIds.has(n.id) ||
      (key !== undefined && seenContent.has(key)) ||
      (current !== undefined && current.entry.mtimeMs === n.pubtimeMs)
    ) {
      log.debug({ event: 'wis2.duplicate', path: n.path, id: n.id }, 'duplicate notification skipped');
      return;
    }
    // Applied at once, so that a duplicate right behind it is recognised; undone if not durable.
    apply(entry);
    tree = undefined;
    try {
      await (journal as Journal).append(entry);
    } catch (err) {
      forget(entry);
      throw err;
    }
    for (const l of listeners) {
      try {
        l();
      } catch (err) {
        log.warn({ event: 'watch.listener_failed', err }, 'change listener threw');
      }
    }
  }

  function connectOptions(): IClientOptions {
    return {
      protocolVersion: settings.protocolVersion,
      clientId: settings.clientId,
      clean: false,
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: opts.connectTimeoutMs,
      resubscribe: false,
      ...(settings.protocolVersion === 5 && { properties: { sessionExpiryInterval: settings.sessionExpirySec } }),
      ...(opts.user !== '' && { username: opts.user }),
      ...(opts.password !== undefined && { password: opts.password }),
      ...(opts.tls.ca !== undefined && { ca: opts.tls.ca }),
      rejectUnauthorized: !opts.tls.insecure,
      // Acknowledge only once the notification is in the journal (or is known to be unusable).
      customHandleAcks: (topic, message, _packet, done) => {
        onNotification(topic, message).then(
          () => done(0),
          (err: unknown) => {
            log.error(
              { event: 'wis2.journal_failed', err },
              `cannot record a notification in ${journalFile}; the broker will deliver it again`,
            );
            // No PUBACK: dropping the connection makes the broker keep and re-send it.
            client?.stream.destroy();
          },
        );
      },
    };
  }

  function subscribe(c: MqttClient): Promise<void> {
    return new Promise((resolve) => {
      c.subscribe(settings.topic, { qos: 1 }, (err, granted) => {
        const refused = granted?.find((g) => g.qos === 128);
        if (err || refused) {
          log.error(
            { event: 'wis2.subscribe_failed', topic: settings.topic, err: err ?? undefined },
            `broker refused the subscription to ${settings.topic}; check the topic filter and the broker's ACL`,
          );
        } else log.info({ event: 'wis2.subscribed', topic: settings.topic }, `subscribed to ${settings.topic}`);
        resolve();
      });
    });
  }

  /** Opens the journal and connects; resolves once subscribed, or after the connect timeout (retries go on). */
  function start(): Promise<void> {
    startup ??= (async () => {
      for (let previous = holders.get(journalFile); previous !== undefined; previous = holders.get(journalFile))
        await previous;
      if (closed) return;
      holders.set(
        journalFile,
        new Promise<void>((resolve) => {
          releaseHold = () => {
            holders.delete(journalFile);
            resolve();
          };
        }),
      );
      const opened = Journal.open(journalFile, settings.keepMs, Date.now());
      journal = opened.journal;
      for (const line of opened.lines) apply(line);
      if (pending.size > 0)
        log.info(
          { event: 'wis2.replayed', pending: pending.size },
          `${pending.size} notification(s) pending from before`,
        );
      // Through the source's (or the environment's) proxy when one applies.
      const c = connectMqtt(brokerUrl, connectOptions(), opts);
      client = c;
      let firstReady: (() => void) | undefined;
      const ready = new Promise<void>((resolve) => {
        firstReady = resolve;
      });
      c.on('connect', (connack) => {
        if (brokerDown) log.info({ event: 'wis2.broker_up' }, `broker ${brokerUrl} is back`);
        brokerDown = false;
        lastBrokerError = undefined;
        // With a session present the broker kept the subscription; otherwise (first start, broker
        // lost its state) subscribe again.
        const sub = connack.sessionPresent ? Promise.resolve() : subscribe(c);
        void sub.then(() => firstReady?.());
      });
      c.on('close', () => {
        if (closed || brokerDown) return;
        brokerDown = true;
        log.warn({ event: 'wis2.broker_down' }, `lost the broker ${brokerUrl}; reconnecting`);
      });
      c.on('error', (err) => {
        if (err.message === lastBrokerError) return;
        lastBrokerError = err.message;
        log.warn(
          { event: 'wis2.broker_error', err: { code: errorCode(err), message: err.message } },
          `broker ${brokerUrl}: ${err.message}`,
        );
      });
      // QoS 0 messages have no acknowledgement to hold back.
      c.on('message', (topic, payload, packet) => {
        if (packet.qos !== 0) return;
        onNotification(topic, payload).catch((err: unknown) =>
          log.error({ event: 'wis2.journal_failed', err }, `cannot record a notification in ${journalFile}`),
        );
      });
      const timer = setTimeout(() => firstReady?.(), opts.connectTimeoutMs);
      await ready;
      clearTimeout(timer);
      firstReady = undefined;
    })();
    return startup;
  }

  /** The HTTP source of a download origin, opened on first use. */
  function httpFor(href: string): { source: Source; rel: string } {
    const url = new URL(href);
    let source = origins.get(url.origin);
    if (source) {
      origins.delete(url.origin);
    } else {
      source = createHttpSource({
        ...opts,
        protocol: url.protocol === 'https:' ? 'https' : 'http',
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80,
        user: '',
        rootPath: '/',
        tls: { mode: 'none', insecure: opts.tls.insecure, ...(opts.tls.ca !== undefined && { ca: opts.tls.ca }) },
      });
      if (origins.size >= MAX_ORIGINS) {
        const [lru, old] = origins.entries().next().value as [string, Source];
        origins.delete(lru);
        void old.close().catch(() => undefined);
      }
    }
    origins.set(url.origin, source);
    return { source, rel: decodeURIComponent(url.pathname).replace(/^\/+/, '') };
  }

  function sizeOf(p: Pending): number | undefined {
    return p.entry.size ?? p.headSize;
  }

  async function buildTree(listOpts: ListOptions): Promise<Map<string, RemoteEntry[]>> {
    const now = Date.now();
    expire(now);
    let done = 0;
    const out = new Map<string, RemoteEntry[]>();
    const dirs = new Set<string>();
    const addDir = (dir: string, entry: RemoteEntry) => {
      let list = out.get(dir);
      if (!list) {
        list = [];
        out.set(dir, list);
      }
      list.push(entry);
    };
    for (const [p, pend] of [...pending]) {
      listOpts.signal.throwIfAborted();
      const known = await listOpts.known?.(p);
      if (known?.done && known.mtimeMs === pend.entry.mtimeMs) {
        // Fetched (or given up) by the ledger: the notification has served.
        pending.delete(p);
        journal
          ?.append({ t: 'd', at: now, path: p, mtimeMs: pend.entry.mtimeMs })
          .catch((err: unknown) => log.warn({ event: 'wis2.journal_failed', err }, `cannot write to ${journalFile}`));
        done++;
        continue;
      }
      if (sizeOf(pend) === undefined && (listOpts.wanted?.(p) ?? true)) {
        try {
          const { source, rel } = httpFor(pend.entry.href);
          const st = await source.stat?.(rel, listOpts);
          if (st === undefined) throw new Error('404 not found');
          pend.headSize = st.sizeBytes;
        } catch (err) {
          log.warn(
            { event: 'wis2.head_failed', path: p, err: { code: errorCode(err), message: (err as Error).message } },
            `${p}: the notification gives no length and a HEAD of its link failed; tried again at the next poll`,
          );
          continue;
        }
      }
      const parts = p.split('/');
      const name = parts[parts.length - 1] ?? p;
      addDir(parts.slice(0, -1).join('/'), {
        path: p,
        name,
        type: 'file',
        sizeBytes: sizeOf(pend) ?? 0,
        mtimeMs: pend.entry.mtimeMs,
        mtimePrecision: 'ms',
      });
      for (let i = parts.length - 1; i > 0; i--) {
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) break;
        dirs.add(dir);
        const parent = parts.slice(0, i - 1).join('/');
        addDir(parent, {
          path: dir,
          name: parts[i - 1] as string,
          type: 'dir',
          sizeBytes: 0,
          mtimeMs: 0,
          mtimePrecision: 'ms',
        });
      }
    }
    if (done > 0)
      journal
        ?.maybeCompact(now)
        .catch((err: unknown) => log.warn({ event: 'wis2.journal_failed', err }, `cannot compact ${journalFile}`));
    return out;
  }

  return {
    displayUrl,

    async list(dir: string, listOpts: ListOptions): Promise<Listing> {
      if (closed) throw new TransientError('POLLER_WIS2_CLOSED', `wis2 source "${opts.name}": source is closed`);
      await start();
      const rel = dir.replace(/^\/+|\/+$/g, '');
      if (rel === '' || tree === undefined) tree = await buildTree(listOpts);
      return [...(tree.get(rel) ?? [])];
    },

    async download(remotePath: string, to: Writable, dl: DownloadOptions): Promise<void> {
      await start();
      const p = pending.get(remotePath);
      if (!p) {
        throw new PermanentError(
          'POLLER_WIS2_NOT_PENDING',
          `wis2 source "${opts.name}": ${remotePath}: no pending notification (expired after the keep window); it is fetched again only if it is announced again`,
        );
      }
      if (dl.expect && dl.expect.mtimeMs !== p.entry.mtimeMs) {
        throw new ChangedError(
          'POLLER_WIS2_SUPERSEDED',
          `wis2 source "${opts.name}": ${remotePath}: a newer notification replaced this version; the newer one is fetched`,
        );
      }
      const { source, rel } = httpFor(p.entry.href);
      try {
        await source.download(rel, to, dl);
      } catch (err) {
        // The announced length is not what the server sends: retried with backoff, then quarantined.
        if (errorCode(err) === 'POLLER_HTTP_CHANGED' && dl.offsetBytes === 0) {
          throw new TransientError(
            'POLLER_WIS2_LENGTH_MISMATCH',
            `wis2 source "${opts.name}": ${remotePath}: ${p.entry.href} does not match the notification: ${(err as Error).message}`,
            { cause: err },
          );
        }
        throw err;
      }
    },

    integrity(remotePath: string, version: { mtimeMs: number }): Integrity | undefined {
      const p = pending.get(remotePath);
      if (!p || p.entry.mtimeMs !== version.mtimeMs || p.entry.digest === undefined || p.entry.method === undefined)
        return undefined;
      return { method: p.entry.method, digest: Buffer.from(p.entry.digest, 'base64') };
    },

    async watch(onChange: (relPath: string) => void, { signal }: WatchOptions): Promise<void> {
      signal.throwIfAborted();
      const l = () => onChange('');
      listeners.add(l);
      signal.addEventListener('abort', () => listeners.delete(l), { once: true });
      await start();
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      listeners.clear();
      await startup?.catch(() => undefined);
      await client?.endAsync(false).catch(() => undefined);
      await journal?.close().catch(() => undefined);
      releaseHold?.();
      await Promise.all([...origins.values()].map((s) => s.close().catch(() => undefined)));
      origins.clear();
    },
  };
}
