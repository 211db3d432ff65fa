/**
 * PostgreSQL schema migrations, applied in order under an advisory lock (several hosts starting
 * at once take turns; the second finds the work done). `poller_schema` records each step
 * applied. Append new steps; never edit a released one. The column set is SQLite's (the row
 * helpers in ../rows.ts serve both); times are epoch milliseconds in bigint.
 */
export const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE files (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     source text NOT NULL,
     path text NOT NULL,
     size_bytes bigint NOT NULL,
     mtime_ms bigint NOT NULL,
     mtime_precision text NOT NULL,
     state text NOT NULL,
     stage text,
     sightings integer NOT NULL DEFAULT 1,
     first_seen_ms bigint NOT NULL,
     last_seen_ms bigint NOT NULL,
     fetch_attempts integer NOT NULL DEFAULT 0,
     next_retry_ms bigint,
     error_code text,
     last_error text,
     local_path text,
     fetched_ms bigint,
     done_ms bigint,
     claimed_by text,
     lease_until_ms bigint,
     updated_ms bigint NOT NULL,
     UNIQUE (source, path, size_bytes, mtime_ms)
   );
   CREATE INDEX files_by_path ON files (source, path, id DESC);
   CREATE INDEX files_by_state ON files (state, source);
   CREATE INDEX files_by_mtime ON files (source, mtime_ms);
   -- Claims read only due rows: partial indexes keep them small however long the history grows.
   CREATE INDEX files_due_fetch ON files (source, id)
     WHERE state = 'seen' OR (state = 'failed' AND stage = 'fetch');
   CREATE INDEX files_due_process ON files (source, mtime_ms DESC)
     WHERE state = 'fetched' OR (state = 'failed' AND stage = 'process');
   CREATE INDEX files_claimed ON files (claimed_by) WHERE state IN ('fetching', 'processing');
   CREATE TABLE plugin_runs (
     file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
     plugin text NOT NULL,
     state text NOT NULL,
     attempts integer NOT NULL DEFAULT 0,
     error_code text,
     last_error text,
     duration_ms bigint,
     next_retry_ms bigint,
     outputs jsonb NOT NULL DEFAULT '[]',
     updated_ms bigint NOT NULL,
     PRIMARY KEY (file_id, plugin)
   );
   CREATE INDEX plugin_runs_running ON plugin_runs (file_id) WHERE state = 'running';
   CREATE TABLE sources (
     name text PRIMARY KEY,
     display_url text,
     last_poll_ms bigint,
     last_success_ms bigint,
     last_error text
   );
   CREATE TABLE listing_digests (
     source text NOT NULL,
     dir text NOT NULL,
     digest text NOT NULL,
     rejected integer NOT NULL,
     stored_ms bigint NOT NULL DEFAULT 0,
     PRIMARY KEY (source, dir)
   );
   CREATE TABLE events (
     seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id text NOT NULL,
     sink text NOT NULL,
     kind text NOT NULL,
     source text NOT NULL,
     file_id bigint NOT NULL,
     at_ms bigint NOT NULL,
     fact jsonb NOT NULL,
     sent_ms bigint
   );
   CREATE INDEX events_pending ON events (sink, seq) WHERE sent_ms IS NULL;
   CREATE INDEX events_sent ON events (sent_ms) WHERE sent_ms IS NOT NULL;`,
  // Several hosts: a heartbeat row per poller instance; the sweep returns the claims of
  // instances whose heartbeat is older than the lease.
  `CREATE TABLE instances (
     id text PRIMARY KEY,
     owner text NOT NULL,
     host text NOT NULL,
     pid integer NOT NULL,
     started_ms bigint NOT NULL,
     heartbeat_ms bigint NOT NULL
   );`,
  // One lister per source: a lease with an epoch (fencing token). Readiness in the ledger: the
  // listing that finds a 'seen' version ready stamps it, so any instance can claim it.
  `CREATE TABLE listers (
     source text PRIMARY KEY,
     owner text NOT NULL,
     epoch bigint NOT NULL,
     lease_until_ms bigint NOT NULL
   );
   ALTER TABLE files ADD COLUMN ready_ms bigint;`,
  // The strong ETag (HTTP, S3) joins the version, '' when none (as in SQLite's step).
  `ALTER TABLE files ADD COLUMN etag text NOT NULL DEFAULT '';
   ALTER TABLE files DROP CONSTRAINT files_source_path_size_bytes_mtime_ms_key;
   ALTER TABLE files ADD CONSTRAINT files_version UNIQUE (source, path, size_bytes, mtime_ms, etag);`,
  // The status page's chart: files fetched per source per time slot over 24 h.
  `CREATE INDEX files_by_fetched ON files (fetched_ms, source, size_bytes) WHERE fetched_ms IS NOT NULL;`,
  // Removed upstream: complete listings in a row that missed the path, and when it was found gone.
  `ALTER TABLE files ADD COLUMN missed_listings integer NOT NULL DEFAULT 0;
   ALTER TABLE files ADD COLUMN gone_ms bigint;`,
  // Radar volumes, as in SQLite: one row per volume version, its members (copied file versions),
  // the files the volume stage has looked at (members or not), volume plugin runs, and the volume
  // an outbox row names. Claims read only due versions (a partial index); a lease as for files.
  `CREATE TABLE volumes (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     source text NOT NULL,
     key text NOT NULL,
     version integer NOT NULL,
     digest text NOT NULL,
     fields text NOT NULL,
     state text NOT NULL,
     partial integer NOT NULL DEFAULT 0,
     first_member_ms bigint NOT NULL,
     last_member_ms bigint NOT NULL,
     closed_ms bigint,
     done_ms bigint,
     claimed_by text,
     lease_until_ms bigint,
     next_retry_ms bigint,
     error_code text,
     last_error text,
     updated_ms bigint NOT NULL,
     UNIQUE (source, key, version)
   );
   CREATE INDEX volumes_by_state ON volumes (source, state);
   CREATE INDEX volumes_due ON volumes (source, last_member_ms DESC)
     WHERE claimed_by IS NULL AND state IN ('complete', 'partial', 'failed');
   CREATE INDEX volumes_claimed ON volumes (claimed_by) WHERE claimed_by IS NOT NULL;
   CREATE TABLE volume_members (
     volume_id bigint NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
     member text NOT NULL,
     file_id bigint NOT NULL,
     path text NOT NULL,
     file_version text NOT NULL,
     local_path text NOT NULL,
     size_bytes bigint NOT NULL,
     mtime_ms bigint NOT NULL,
     landed_ms bigint NOT NULL,
     forgotten integer NOT NULL DEFAULT 0,
     PRIMARY KEY (volume_id, member)
   );
   CREATE INDEX volume_members_by_path ON volume_members (path);
   CREATE INDEX volume_members_by_file ON volume_members (file_id);
   CREATE TABLE volume_files (
     file_id bigint PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
     volume_id bigint,
     member text
   );
   CREATE INDEX volume_files_by_volume ON volume_files (volume_id) WHERE volume_id IS NOT NULL;
   CREATE INDEX files_by_source_fetched ON files (source, fetched_ms) WHERE fetched_ms IS NOT NULL;
   CREATE TABLE volume_runs (
     volume_id bigint NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
     plugin text NOT NULL,
     state text NOT NULL,
     attempts integer NOT NULL DEFAULT 0,
     error_code text,
     last_error text,
     duration_ms bigint,
     next_retry_ms bigint,
     outputs text NOT NULL DEFAULT '[]',
     updated_ms bigint NOT NULL,
     PRIMARY KEY (volume_id, plugin)
   );
   CREATE INDEX volume_runs_running ON volume_runs (volume_id) WHERE state = 'running';
   ALTER TABLE events ADD COLUMN volume_id bigint;`,
  // Removed upstream by the upstream's own word (a WIS2 deletion): what said so.
  `ALTER TABLE files ADD COLUMN gone_by text;`,
  // A landing root per host: the instance whose landing holds a version's bytes (NULL: the shared
  // root). Its landed-but-unprocessed rows are found by the sweep when that instance is gone.
  `ALTER TABLE files ADD COLUMN landed_on text;
   CREATE INDEX files_landed_on ON files (landed_on)
     WHERE landed_on IS NOT NULL AND (state = 'fetched' OR (state = 'failed' AND stage = 'process'));`,
];

/** Advisory lock key of the sweep: one instance sweeps at a time ("pollersw"). */
export const SWEEP_LOCK_KEY = 0x706f6c6c65727377n;

/** Advisory lock key of migrations (any constant; "pollermg" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x706f6c6c65726d67n;
