/**
 * Opening a SQLite ledger file: WAL, a busy timeout for the other process on the same file, and
 * the schema migrated (or, read-only, checked) before any statement is prepared.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PermanentError } from '../../errors.js';
import { MIGRATIONS } from './migrations.js';

export function openDatabase(file: string, opts: { busyTimeoutMs?: number; readonly?: boolean }): Database.Database {
  if (!opts.readonly) mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
  if (opts.readonly) {
    checkSchema(db);
    return db;
  }
  useWal(db, opts.busyTimeoutMs ?? 10_000);
  db.pragma('synchronous = NORMAL');
  // Off while migrating: a step that rebuilds `files` must not cascade into plugin_runs.
  db.pragma('foreign_keys = OFF');
  migrate(db);
  db.pragma('foreign_keys = ON');
  return db;
}

/**
 * Switch a ledger to WAL once. Switching takes the file's exclusive lock, and SQLite answers
 * SQLITE_BUSY at once, without the busy handler, while another process is opening or migrating
 * the same new ledger: retry, bounded by the busy timeout. A file already in WAL needs no switch.
 */
function useWal(db: Database.Database, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (let waitMs = 5; ; waitMs = Math.min(waitMs * 2, 200)) {
    try {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      const busy = (err as { code?: string }).code?.startsWith('SQLITE_BUSY') ?? false;
      if (!busy || Date.now() + waitMs > deadline) throw err;
      // Opening is synchronous: sleep the thread briefly rather than spin.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, waitMs);
    }
  }
}

function checkSchema(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === MIGRATIONS.length) return;
  db.close();
  throw new PermanentError(
    'POLLER_LEDGER_SCHEMA_MISMATCH',
    `ledger schema version ${version}, this poller reads ${MIGRATIONS.length}; run \`poller check\` or start the daemon once to migrate it`,
  );
}

function migrate(db: Database.Database): void {
  // The version is read inside each write transaction: two processes starting on a new ledger
  // at once must not both apply the same step.
  for (let step = 0; step <= MIGRATIONS.length; step++) {
    const done = db
      .transaction(() => {
        const current = db.pragma('user_version', { simple: true }) as number;
        if (current > MIGRATIONS.length) {
          throw new PermanentError(
            'POLLER_LEDGER_SCHEMA_TOO_NEW',
            `ledger schema version ${current} is newer than this poller understands (${MIGRATIONS.length}); upgrade poller`,
          );
        }
        if (current === MIGRATIONS.length) return true;
        db.exec(MIGRATIONS[current] as string);
        db.pragma(`user_version = ${current + 1}`);
        return false;
      })
      .immediate();
    if (done) return;
  }
}
