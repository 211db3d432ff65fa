/**
 * A WIS2 subscription as a source (`wis2+mqtt://broker/<topic filter>`): a push-style source.
 *
 * The MQTT client holds a persistent session (stable client id, clean=false, QoS 1), so the
 * broker keeps what is published while poller is down and delivers it at the next connect. Each
 * usable WIS2 Notification Message is written to the journal (fsynced) before its PUBACK, then
 * joins the pending set; `list` shows the pending set as a tree of `data_id` paths, each file
 * versioned by its `pubtime` and sized by its link `length` (or a HEAD), and `download` fetches
 * the link through the HTTP source (status, length, resume, never an error page). With several
 * brokers (`wis2.brokers`, e.g. two Global Brokers) each is a link of its own feeding the same
 * state: a notification that arrives from more than one (same message id, or same data_id and
 * integrity) is taken once, and losing one broker loses nothing the other brings. The ledger
 * dedupes versions; the engine checks `integrity` over the landed bytes before the rename. A
 * version the ledger has finished with leaves the pending set at the next listing.
 */
import path from 'node:path';
import type { Writable } from 'node:stream';
import { ChangedError, errorCode, PermanentError, TransientError } from '../../errors.js';
import type {
  AnnouncedDeletion,
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
import { type BrokerLink, linkBroker } from './broker-link.js';
import { Journal } from './journal.js';
import { buildTree } from './listing.js';
import { parseNotification } from './notification.js';
import { DownloadOrigins } from './origins.js';
import { type Taken, Wis2State } from './state.js';

/**
 * Journals in use in this process, with the close of their holder. A reload opens the new source
 * before the old one closes; both share the client id (the broker would bounce the session
 * between them) and the journal, so the new one starts only once the old one has closed.
 */
const holders = new Map<string, Promise<void>>();

/** The brokers of a source: the one of its URL, then `wis2.brokers`. */
export function brokerUrls(opts: SourceConnectOptions): string[] {
  const settings = opts.wis2;
  if (!settings) return [];
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const scheme = settings.websocket ? 'wss' : settings.tls ? 'mqtts' : 'mqtt';
  return [`${scheme}://${host}:${opts.port}${settings.websocket ? '/mqtt' : ''}`, ...(settings.brokers ?? [])];
}

/** The journal entry of a notification as it arrived, or undefined (with a log line) when unusable. */
function entryOf(topic: string, payload: Buffer, broker: string, log: SourceConnectOptions['log']): Taken | undefined {
  const parsed = parseNotification(payload);
  if (!parsed.ok) {
    log.warn(
      { event: 'wis2.invalid_notification', topic, broker, reason: parsed.reason },
      `WIS2 notification on ${topic} skipped: ${parsed.reason}`,
    );
    return undefined;
  }
  const n = parsed.notification;
  if (n.rel === 'deletion') return { t: 'x', at: Date.now(), id: n.id, path: n.path, mtimeMs: n.pubtimeMs };
  return {
    t: 'n',
    at: Date.now(),
    id: n.id,
    path: n.path,
    href: n.href,
    mtimeMs: n.pubtimeMs,
    ...(n.length !== undefined && { size: n.length }),
    ...(n.integrity && { method: n.integrity.method, digest: n.integrity.digest.toString('base64') }),
  };
}

/** Waits for the previous holder of the journal, then holds it; returns the release. */
async function holdJournal(file: string, closed: () => boolean): Promise<(() => void) | undefined> {
  for (let previous = holders.get(file); previous !== undefined; previous = holders.get(file)) await previous;
  if (closed()) return undefined;
  let release: () => void = () => undefined;
  holders.set(
    file,
    new Promise<void>((resolve) => {
      release = () => {
        holders.delete(file);
        resolve();
      };
    }),
  );
  return release;
}

/**
 * The subscription of one source: the journal, the state and one link per broker, started on
 * first use. Every broker's messages go through `onMessage`, which makes them one stream.
 */
class Wis2Subscription {
  readonly state: Wis2State;
  readonly origins: DownloadOrigins;
  readonly listeners = new Set<() => void>();
  readonly journalFile: string;
  journal: Journal | undefined;
  /** The pending set as directories → entries, rebuilt at each listing of the root. */
  tree: Map<string, RemoteEntry[]> | undefined;
  closed = false;
  readonly #opts: SourceConnectOptions;
  readonly #settings: Wis2Settings;
  readonly #brokers: readonly string[];
  #links: BrokerLink[] = [];
  #startup: Promise<void> | undefined;
  #releaseHold: (() => void) | undefined;

  constructor(opts: SourceConnectOptions, settings: Wis2Settings) {
    this.#opts = opts;
    this.#settings = settings;
    this.#brokers = brokerUrls(opts);
    this.journalFile = path.join(opts.stateDir ?? '.', 'wis2', `${opts.name}.jsonl`);
    this.state = new Wis2State(settings.keepMs, opts.log);
    this.origins = new DownloadOrigins(opts);
  }

  get displayUrl(): string {
    // The first broker's URL without the WebSocket path (wss://host:443/mqtt).
    return `wis2+${(this.#brokers[0] as string).replace(/\/mqtt$/, '')}/${this.#settings.topic}`;
  }

  /** Handles one message from any broker; rejects only when it could not be made durable. */
  readonly onMessage = async (topic: string, payload: Buffer, broker: string): Promise<void> => {
    const log = this.#opts.log;
    const entry = entryOf(topic, payload, broker, log);
    if (!entry) return;
    if (this.state.isDuplicate(entry)) {
      log.debug({ event: 'wis2.duplicate', path: entry.path, id: entry.id, broker }, 'duplicate notification skipped');
      return;
    }
    // Applied at once, so that a duplicate right behind it (from any broker) is recognised; undone if not durable.
    this.state.apply(entry);
    this.tree = undefined;
    try {
      await (this.journal as Journal).append(entry);
    } catch (err) {
      this.state.forget(entry);
      this.tree = undefined;
      throw err;
    }
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        log.warn({ event: 'watch.listener_failed', err }, 'change listener threw');
      }
    }
  };

  /** Opens the journal and connects every broker; resolves once each is subscribed or timed out. */
  start(): Promise<void> {
    this.#startup ??= (async () => {
      const log = this.#opts.log;
      this.#releaseHold = await holdJournal(this.journalFile, () => this.closed);
      if (!this.#releaseHold) return;
      const opened = Journal.open(this.journalFile, this.#settings.keepMs, Date.now());
      this.journal = opened.journal;
      for (const line of opened.lines) this.state.apply(line);
      if (this.state.pending.size > 0)
        log.info(
          { event: 'wis2.replayed', pending: this.state.pending.size },
          `${this.state.pending.size} notification(s) pending from before`,
        );
      const settings = this.#settings;
      this.#links = this.#brokers.map((url) =>
        linkBroker({ url, settings, connect: this.#opts, log, onMessage: this.onMessage }),
      );
      await Promise.all(this.#links.map((l) => l.ready));
    })();
    return this.#startup;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.#startup?.catch(() => undefined);
    await Promise.all(this.#links.map((l) => l.end()));
    await this.journal?.close().catch(() => undefined);
    this.#releaseHold?.();
    await this.origins.close();
  }
}

/** Fetches the link of the pending notification of `remotePath`. */
async function downloadNotified(
  sub: Wis2Subscription,
  name: string,
  remotePath: string,
  to: Writable,
  dl: DownloadOptions,
): Promise<void> {
  await sub.start();
  const p = sub.state.pending.get(remotePath);
  const deleted = sub.state.deletions.get(remotePath);
  if (!p && deleted && (dl.expect === undefined || dl.expect.mtimeMs <= deleted.mtimeMs)) {
    throw new ChangedError(
      'POLLER_WIS2_DELETED',
      `wis2 source "${name}": ${remotePath}: a deletion notification arrived before the fetch; it is not fetched`,
    );
  }
  if (!p) {
    throw new PermanentError(
      'POLLER_WIS2_NOT_PENDING',
      `wis2 source "${name}": ${remotePath}: no pending notification (expired after the keep window); it is fetched again only if it is announced again`,
    );
  }
  if (dl.expect && dl.expect.mtimeMs !== p.entry.mtimeMs) {
    throw new ChangedError(
      'POLLER_WIS2_SUPERSEDED',
      `wis2 source "${name}": ${remotePath}: a newer notification replaced this version; the newer one is fetched`,
    );
  }
  const { source, rel, query } = sub.origins.for(p.entry.href);
  try {
    await source.download(rel, to, query === '' ? dl : { ...dl, urlQuery: query });
  } catch (err) {
    // The announced length is not what the server sends: retried with backoff, then quarantined.
    if (errorCode(err) === 'POLLER_HTTP_CHANGED' && dl.offsetBytes === 0) {
      throw new TransientError(
        'POLLER_WIS2_LENGTH_MISMATCH',
        `wis2 source "${name}": ${remotePath}: ${p.entry.href} does not match the notification: ${(err as Error).message}`,
        { cause: err },
      );
    }
    throw err;
  }
}

export function createWis2Source(opts: SourceConnectOptions): Source {
  if (!opts.wis2) throw new Error('wis2 source without wis2 settings');
  const sub = new Wis2Subscription(opts, opts.wis2);
  const log = opts.log;
  return {
    displayUrl: sub.displayUrl,

    async list(dir: string, listOpts: ListOptions): Promise<Listing> {
      if (sub.closed) throw new TransientError('POLLER_WIS2_CLOSED', `wis2 source "${opts.name}": source is closed`);
      await sub.start();
      const rel = dir.replace(/^\/+|\/+$/g, '');
      if (rel === '' || sub.tree === undefined)
        sub.tree = await buildTree(
          { state: sub.state, journal: sub.journal, origins: sub.origins, log, journalFile: sub.journalFile },
          listOpts,
        );
      return [...(sub.tree.get(rel) ?? [])];
    },

    download: (remotePath, to, dl) => downloadNotified(sub, opts.name, remotePath, to, dl),

    integrity(remotePath: string, version: { mtimeMs: number }): Integrity | undefined {
      const p = sub.state.pending.get(remotePath);
      if (!p || p.entry.mtimeMs !== version.mtimeMs || p.entry.digest === undefined || p.entry.method === undefined)
        return undefined;
      return { method: p.entry.method, digest: Buffer.from(p.entry.digest, 'base64') };
    },

    async watch(onChange: (relPath: string) => void, { signal }: WatchOptions): Promise<void> {
      signal.throwIfAborted();
      const l = () => onChange('');
      sub.listeners.add(l);
      signal.addEventListener('abort', () => sub.listeners.delete(l), { once: true });
      await sub.start();
    },

    deletions: () =>
      [...sub.state.deletions.values()].map((d) => ({
        path: d.path,
        atMs: d.mtimeMs,
        by: `WIS2 notification ${d.id}`,
      })),

    async deletionsRecorded(done: readonly AnnouncedDeletion[]): Promise<void> {
      const at = Date.now();
      for (const d of done) {
        const line = { t: 'y', at, path: d.path, mtimeMs: d.atMs } as const;
        sub.state.apply(line);
        await sub.journal?.append(line);
      }
    },

    close: () => sub.close(),
  };
}
