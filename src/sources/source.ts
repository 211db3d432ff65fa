import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ProxyChoice, ProxyCredentials } from './proxy/proxy-settings.js';

export type EntryType = 'file' | 'dir' | 'link';

/**
 * How exact `mtimeMs` is. MLSD/MDTM and SFTP give seconds; a Unix LIST line gives minutes for
 * recent files and only a day ("Nov 22 2025") for files older than six months. The ledger
 * compares versions at the coarser precision of the two, so a LIST that switches format
 * does not make an old file look new.
 */
export type MtimePrecision = 'ms' | 's' | 'minute' | 'day';

/** One entry of a remote directory listing. Paths are POSIX, relative to the source root. */
export interface RemoteEntry {
  /** Path relative to the source root, '/'-separated, no leading slash: `2026/11/23/vol.bufr`. */
  readonly path: string;
  /** Last path segment as the server sent it. */
  readonly name: string;
  readonly type: EntryType;
  readonly sizeBytes: number;
  /** Modification time, ms since the epoch (UTC, after applying the source's timezone). */
  readonly mtimeMs: number;
  readonly mtimePrecision: MtimePrecision;
  /**
   * The server's strong ETag (HTTP, S3), when it gives one: then it is the version key with the
   * size, in place of the mtime. Weak ETags (`W/"..."`) are never set here.
   */
  readonly etag?: string;
}

/**
 * A directory listing. `truncated` is true when the listing looks cut short by a server cap
 * (pure-ftpd stops at 2,000 entries by default, without an error): entries past the cap are
 * missing, so the caller should flag it (log, metrics) and not conclude that a file is gone.
 * Sources that cannot tell leave it undefined; a plain `RemoteEntry[]` is a valid `Listing`.
 * A listing with unparsed lines is incomplete too: a file may hide in a line not understood.
 */
export type Listing = RemoteEntry[] & {
  truncated?: boolean;
  /** Listing lines the source could not read (logged by the source; counted in a metric). */
  unparsedLines?: number;
};

export interface ListOptions {
  signal: AbortSignal;
  /** HTTP `stat`: a query string sent with the file's URL (see DownloadOptions.urlQuery). */
  urlQuery?: string;
  /**
   * Whether a file path is wanted (the include/exclude globs). A source that pays a request per
   * file to learn its size (HTTP HEAD) asks only about wanted files.
   */
  wanted?: (filePath: string) => boolean;
  /**
   * The version the ledger already has for a path, if any (from the engine). An HTTP source whose
   * index abbreviates sizes sends no HEAD for a file whose known version agrees with the index.
   */
  known?: (filePath: string) => Promise<KnownVersion | undefined>;
}

/** What the ledger knows of a path: its latest version, and whether that version was taken past `seen`. */
export interface KnownVersion {
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly mtimePrecision: MtimePrecision;
  /** The strong ETag recorded with the version, if any. */
  readonly etag?: string;
  /** When this version was last fetched (a GET that checked its ETag), if ever. */
  readonly fetchedMs?: number;
  /** Settled and taken (fetching, fetched, processed, failed...): not a file still being watched. */
  readonly settled: boolean;
  /** Nothing more to fetch for this version: landed, or given up (quarantined at the fetch). */
  readonly done?: boolean;
}

export interface DownloadOptions {
  /** Resume from this byte offset (REST for FTP, read offset for SFTP). 0 for a fresh download. */
  offsetBytes: number;
  signal: AbortSignal;
  /** Called with the byte count of each chunk written. */
  onBytes?: (n: number) => void;
  /** The version being fetched, as listed: HTTP and S3 check the reply against it (length, If-Range). */
  expect?: { sizeBytes: number; mtimeMs: number; mtimePrecision?: MtimePrecision; etag?: string };
  /** HTTP: a query string (`?a=1`, percent-encoded) sent with the file's URL, as a WIS2 link gives it. */
  urlQuery?: string;
}

/**
 * One protocol behind one interface. A Source holds its own connection pool; every method may
 * be called concurrently (the pool bounds real concurrency). Errors are classified at this
 * boundary into TransientError / ThrottledError / PermanentError / SourceError (src/errors.ts).
 */
export interface Source {
  /** Credential-free URL, safe to log and store. */
  readonly displayUrl: string;
  /** List one directory (non-recursive). `dir` is relative to the source root ('' = root). */
  list(dir: string, opts: ListOptions): Promise<Listing>;
  /**
   * Stream a remote file (relative path) into `to`, starting at `opts.offsetBytes`. Resolves once
   * every byte has been accepted by `to` (its write callbacks ran). `to` is left open: the caller
   * ends/closes it (and fsyncs) itself.
   */
  download(path: string, to: Writable, opts: DownloadOptions): Promise<void>;
  /** Size and mtime of one file, or undefined when it does not exist. */
  stat?(path: string, opts: ListOptions): Promise<RemoteEntry | undefined>;
  remove?(path: string, opts: ListOptions): Promise<void>;
  rename?(from: string, to: string, opts: ListOptions): Promise<void>;
  /**
   * Optional change notifications (local directories): `onChange` gets the relative path of a
   * file that was added or changed. Resolves once watching has started; stops when `opts.signal`
   * aborts. A hint for an early poll only: events can be lost (overflow, network file systems),
   * so the engine keeps rescanning on its schedule and applies the settle rule as usual.
   */
  watch?(onChange: (relPath: string) => void, opts: WatchOptions): Promise<void>;
  /**
   * The digest a version is announced with (WIS2 notifications carry one), if any. The landing
   * computes it over the whole file, resumed prefix included, and refuses a mismatch before the
   * rename: a wrong file never lands.
   */
  integrity?(path: string, version: { sizeBytes: number; mtimeMs: number }): Integrity | undefined;
  /**
   * Removals the upstream announced itself (WIS2 notifications with a `deletion` link), held
   * durably by the source until the engine has recorded them in the ledger.
   */
  deletions?(): readonly AnnouncedDeletion[];
  /** The engine recorded these (or found nothing to record): they are not handed out again. */
  deletionsRecorded?(done: readonly AnnouncedDeletion[]): Promise<void>;
  /** Close every pooled connection. Idempotent. */
  close(): Promise<void>;
}

/** A removal the upstream announced: the path, when, and what said so (kept in the ledger). */
export interface AnnouncedDeletion {
  readonly path: string;
  /** When the upstream removed it (a WIS2 notification's pubtime). */
  readonly atMs: number;
  /** What said so, shown by `poller why`: `WIS2 notification <id>`. */
  readonly by: string;
}

/** An expected digest: a Node hash name (sha256, sha512, sha3-256...) and the digest bytes. */
export interface Integrity {
  readonly method: string;
  readonly digest: Buffer;
}

/** A WIS2 subscription (`wis2+mqtt://broker/<topic filter>`), from the config. */
export interface Wis2Settings {
  /** MQTT topic filter, `+` and `#` allowed, `$share/<group>/` for several hosts. */
  readonly topic: string;
  /** Stable client id: the broker keeps the session (and what arrives while away) under it. */
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  /** `wis2+mqtts://` and `wis2+wss://`: TLS to the broker. */
  readonly tls: boolean;
  /** `wis2+wss://`: MQTT over WebSockets (path /mqtt), as brokers offer it on port 443. */
  readonly websocket?: boolean;
  /** How long a notification is kept for retries and dedupe. */
  readonly keepMs: number;
  /** MQTT 5: how long the broker keeps the session while the poller is away. */
  readonly sessionExpirySec: number;
  /** More brokers (`mqtt(s)://host:port`) with the same subscription, deduplicated as one stream. */
  readonly brokers?: readonly string[];
}

export interface WatchOptions {
  signal: AbortSignal;
  /**
   * The part of the tree the engine polls, asked again whenever the watch set is recomputed: a
   * source watches only there. Absent: the whole tree.
   */
  scope?: () => WatchScope;
}

/** Where new files can appear for the engine to take. */
export interface WatchScope {
  /** A cycle's start directories (date templates), relative to the root; absent: the root. */
  startDirs?: readonly string[] | undefined;
  /**
   * The source's maxAge: a new file changes its directory's mtime, so a directory not modified
   * within it gets no new file the engine takes (a file rewritten in place there is left to the
   * scheduled listing).
   */
  maxAgeMs?: number | undefined;
}

/** TLS settings for FTPS. Verification is on unless `insecure` is written in the config. */
export interface TlsSettings {
  mode: 'none' | 'explicit' | 'implicit';
  /** PEM text of the CA bundle to trust (read from the `ca` file by config loading). */
  ca?: string;
  /** SHA-256 fingerprint of the server certificate to pin (hex, colons optional). */
  fingerprint?: string;
  insecure: boolean;
}

/** A source URL's scheme, without the colon. */
export type SourceProtocol =
  | 'ftp'
  | 'ftps'
  | 'sftp'
  | 'file'
  | 'http'
  | 'https'
  | 's3'
  | 'wis2+mqtt'
  | 'wis2+mqtts'
  | 'wis2+wss';

/** Everything a protocol needs to open connections; built from the validated config. */
export interface SourceConnectOptions {
  /** The source's name from the config (for logs and errors). */
  name: string;
  protocol: SourceProtocol;
  host: string;
  port: number;
  user: string;
  /** Absolute remote root directory (URL path), e.g. `/outgoing`. */
  rootPath: string;
  password?: string;
  privateKey?: Buffer;
  passphrase?: string;
  tls: TlsSettings;
  /** SFTP: SHA-256 host key fingerprint (base64 as OpenSSH prints it, or hex). */
  hostKey?: string;
  /** SFTP: path to a known_hosts file. */
  knownHosts?: string;
  /** IANA timezone of LIST times for servers that list local time. Default UTC. */
  timezone: string;
  /** Most connections this source may hold open. */
  maxConnections: number;
  connectTimeoutMs: number;
  /** Inactivity timeout of data transfers and replies. */
  dataTimeoutMs: number;
  /** HTTP(S): a bearer token (sent as `Authorization: Bearer`); basic auth uses user + password. */
  bearerToken?: string;
  /** The source's `proxy:` (a proxy, or `none`); absent: the environment's, as curl reads it. */
  proxy?: ProxyChoice;
  /** Credentials for whichever proxy applies (`proxyCredentialsFile`). */
  proxyCredentials?: ProxyCredentials;
  /** S3: where and how to sign; absent for other protocols. */
  s3?: S3Settings;
  /** WIS2: the subscription; absent for other protocols. */
  wis2?: Wis2Settings;
  /** The process's private state directory (a WIS2 source keeps its journal there). */
  stateDir?: string;
  log: Logger;
}

/** The connection settings of a configured source (the config's SourceConfig has these and more). */
export type SourceSettings = Readonly<Omit<SourceConnectOptions, 'log' | 'stateDir'>>;

/** S3 settings from the config; neither credentials nor instanceProfile means anonymous (unsigned) requests. */
export interface S3Settings {
  bucket: string;
  /** Endpoint URL (`https://s3.eu-west-1.amazonaws.com`, a MinIO URL); default AWS for the region. */
  endpoint?: string;
  region: string;
  /** Bucket in the path (`endpoint/bucket/key`) instead of the host name (`bucket.endpoint/key`). */
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * No keys given and not anonymous: temporary keys from the instance metadata service, at
   * `endpoint` (AWS_EC2_METADATA_SERVICE_ENDPOINT) or the link-local default.
   */
  instanceProfile?: { endpoint?: string };
}
