/**
 * Schema migrations, applied in order; `PRAGMA user_version` records the last one applied.
 * Append new steps; never edit a released one.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE files (
     id INTEGER PRIMARY KEY,
     source TEXT NOT NULL,
     path TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     mtime_ms INTEGER NOT NULL,
     mtime_precision TEXT NOT NULL,
     state TEXT NOT NULL,
     stage TEXT,
     sightings INTEGER NOT NULL DEFAULT 1,
     first_seen_ms INTEGER NOT NULL,
     last_seen_ms INTEGER NOT NULL,
     fetch_attempts INTEGER NOT NULL DEFAULT 0,
     next_retry_ms INTEGER,
     error_code TEXT,
     last_error TEXT,
     local_path TEXT,
     fetched_ms INTEGER,
     done_ms INTEGER,
     claimed_by TEXT,
     lease_until_ms INTEGER,
     updated_ms INTEGER NOT NULL,
     UNIQUE (source, path, size_bytes, mtime_ms)
   );
   CREATE INDEX files_by_path ON files (source, path, id);
   CREATE INDEX files_by_state ON files (state, source);
   CREATE TABLE plugin_runs (
     file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
     plugin TEXT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     error_code TEXT,
     last_error TEXT,
     duration_ms INTEGER,
     next_retry_ms INTEGER,
     outputs TEXT NOT NULL DEFAULT '[]',
     updated_ms INTEGER NOT NULL,
     PRIMARY KEY (file_id, plugin)
   );
   CREATE TABLE sources (
     name TEXT PRIMARY KEY,
     display_url TEXT,
     last_poll_ms INTEGER,
     last_success_ms INTEGER,
     last_error TEXT
   );`,
  // Digest of each directory's last listing in which every entry needed nothing: an identical
  // listing is then skipped without a lookup per entry (a no-change re-poll of a big directory).
  `CREATE TABLE listing_digests (
     source TEXT NOT NULL,
     dir TEXT NOT NULL,
     digest TEXT NOT NULL,
     rejected INTEGER NOT NULL,
     PRIMARY KEY (source, dir)
   );`,
  // Retention: done versions are pruned by file age per source, in small batches; digests of
  // directories not listed differently for a whole window go with them.
  `CREATE INDEX files_by_mtime ON files (source, mtime_ms);
   ALTER TABLE listing_digests ADD COLUMN stored_ms INTEGER NOT NULL DEFAULT 0;`,
  // The transactional outbox: one row per (transition, sink), written in the transition's own
  // transaction; the dispatcher of each sink reads its pending rows in order and marks them sent
  // on the broker's acknowledgement.
  `CREATE TABLE events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL,
     sink TEXT NOT NULL,
     kind TEXT NOT NULL,
     source TEXT NOT NULL,
     file_id INTEGER NOT NULL,
     at_ms INTEGER NOT NULL,
     fact TEXT NOT NULL,
     sent_ms INTEGER
   );
   CREATE INDEX events_pending ON events (sink, seq) WHERE sent_ms IS NULL;
   CREATE INDEX events_sent ON events (sent_ms) WHERE sent_ms IS NOT NULL;`,
  // The strong ETag (HTTP, S3) joins the version: a file rewritten with the same size and mtime is
  // a new version. SQLite cannot change a UNIQUE constraint in place, so the table is rebuilt
  // (the ledger runs migrations with foreign keys off: plugin_runs rows keep their file ids).
  // '' means no ETag, so versions without one stay unique as before.
  `CREATE TABLE files_etag (
     id INTEGER PRIMARY KEY,
     source TEXT NOT NULL,
     path TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     mtime_ms INTEGER NOT NULL,
     mtime_precision TEXT NOT NULL,
     state TEXT NOT NULL,
     stage TEXT,
     sightings INTEGER NOT NULL DEFAULT 1,
     first_seen_ms INTEGER NOT NULL,
     last_seen_ms INTEGER NOT NULL,
     fetch_attempts INTEGER NOT NULL DEFAULT 0,
     next_retry_ms INTEGER,
     error_code TEXT,
     last_error TEXT,
     local_path TEXT,
     fetched_ms INTEGER,
     done_ms INTEGER,
     claimed_by TEXT,
     lease_until_ms INTEGER,
     updated_ms INTEGER NOT NULL,
     etag TEXT NOT NULL DEFAULT '',
     UNIQUE (source, path, size_bytes, mtime_ms, etag)
   );
   INSERT INTO files_etag (id, source, path, size_bytes, mtime_ms, mtime_precision, state, stage, sightings, first_seen_ms, last_seen_ms, fetch_attempts, next_retry_ms, error_code, last_error, local_path, fetched_ms, done_ms, claimed_by, lease_until_ms, updated_ms)
     SELECT id, source, path, size_bytes, mtime_ms, mtime_precision, state, stage, sightings, first_seen_ms, last_seen_ms, fetch_attempts, next_retry_ms, error_code, last_error, local_path, fetched_ms, done_ms, claimed_by, lease_until_ms, updated_ms FROM files;
   DROP TABLE files;
   ALTER TABLE files_etag RENAME TO files;
   CREATE INDEX files_by_path ON files (source, path, id);
   CREATE INDEX files_by_state ON files (state, source);
   CREATE INDEX files_by_mtime ON files (source, mtime_ms);`,
  // The status page's chart: files fetched per source per 5 minutes over 24 h, one range scan of
  // this covering index instead of a pass over every row.
  `CREATE INDEX files_by_fetched ON files (fetched_ms, source, size_bytes) WHERE fetched_ms IS NOT NULL;`,
  // Radar volumes: one row per volume version (a reopened volume gets the next version), its
  // members (copied file versions: a pruned file row does not take a volume's history with it),
  // the files the volume stage has looked at (members or not), and volume plugin runs.
  `CREATE TABLE volumes (
     id INTEGER PRIMARY KEY,
     source TEXT NOT NULL,
     key TEXT NOT NULL,
     version INTEGER NOT NULL,
     digest TEXT NOT NULL,
     fields TEXT NOT NULL,
     state TEXT NOT NULL,
     partial INTEGER NOT NULL DEFAULT 0,
     first_member_ms INTEGER NOT NULL,
     last_member_ms INTEGER NOT NULL,
     closed_ms INTEGER,
     done_ms INTEGER,
     claimed_by TEXT,
     lease_until_ms INTEGER,
     next_retry_ms INTEGER,
     error_code TEXT,
     last_error TEXT,
     updated_ms INTEGER NOT NULL,
     UNIQUE (source, key, version)
   );
   CREATE INDEX volumes_by_state ON volumes (source, state);
   CREATE TABLE volume_members (
     volume_id INTEGER NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
     member TEXT NOT NULL,
     file_id INTEGER NOT NULL,
     path TEXT NOT NULL,
     file_version TEXT NOT NULL,
     local_path TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     mtime_ms INTEGER NOT NULL,
     landed_ms INTEGER NOT NULL,
     PRIMARY KEY (volume_id, member)
   );
   CREATE INDEX volume_members_by_path ON volume_members (path);
   CREATE TABLE volume_files (
     file_id INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
     volume_id INTEGER,
     member TEXT
   );
   CREATE INDEX volume_files_by_volume ON volume_files (volume_id) WHERE volume_id IS NOT NULL;
   CREATE INDEX files_by_source_fetched ON files (source, fetched_ms) WHERE fetched_ms IS NOT NULL;
   CREATE TABLE volume_runs (
     volume_id INTEGER NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
     plugin TEXT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     error_code TEXT,
     last_error TEXT,
     duration_ms INTEGER,
     next_retry_ms INTEGER,
     outputs TEXT NOT NULL DEFAULT '[]',
     updated_ms INTEGER NOT NULL,
     PRIMARY KEY (volume_id, plugin)
   );`,
  // Volume events: the outbox row names the volume version (file_id is 0 for them).
  `ALTER TABLE events ADD COLUMN volume_id INTEGER;`,
  // A member whose file version was forgotten (`poller forget`): when the file comes back, even
  // with the same version, it reopens the volume instead of counting as already there.
  `ALTER TABLE volume_members ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0;`,
  // Removed upstream: complete listings in a row that missed the path, and when it was found gone.
  `ALTER TABLE files ADD COLUMN missed_listings INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE files ADD COLUMN gone_ms INTEGER;`,
  // Removed upstream by the upstream's own word (a WIS2 deletion): what said so.
  `ALTER TABLE files ADD COLUMN gone_by TEXT;`,
];
