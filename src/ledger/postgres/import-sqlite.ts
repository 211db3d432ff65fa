/**
 * `poller ledger migrate --to postgres://…`: copy a SQLite ledger (file versions with their ids,
 * plugin runs, sources, listing digests, the outbox, radar volumes with their members, looked-at
 * files and runs) into an empty PostgreSQL ledger in one
 * transaction, so a single host grows into several without fetching anything again.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PermanentError } from '../../errors.js';
import { PostgresLedger, type PostgresLedgerOptions } from './postgres-ledger.js';

/** Rows per statement (one JSON parameter each): bounds the memory of a round trip. */
const BATCH = 5_000;

export interface ImportCounts {
  files: number;
  pluginRuns: number;
  sources: number;
  digests: number;
  events: number;
  volumes: number;
  volumeMembers: number;
  volumeFiles: number;
  volumeRuns: number;
}

/** Tables in copy order (plugin runs after their files); `json` columns hold JSON text in SQLite. */
const TABLES = [
  { name: 'files', key: 'id', json: [] as string[], count: 'files' },
  { name: 'plugin_runs', key: 'rowid', json: ['outputs'], count: 'pluginRuns' },
  { name: 'sources', key: 'rowid', json: [], count: 'sources' },
  { name: 'listing_digests', key: 'rowid', json: [], count: 'digests' },
  { name: 'events', key: 'seq', json: ['fact'], count: 'events' },
  { name: 'volumes', key: 'id', json: [], count: 'volumes' },
  { name: 'volume_members', key: 'rowid', json: [], count: 'volumeMembers' },
  { name: 'volume_files', key: 'file_id', json: [], count: 'volumeFiles' },
  { name: 'volume_runs', key: 'rowid', json: [], count: 'volumeRuns' },
] as const;

export async function importSqliteLedger(sqliteFile: string, target: PostgresLedgerOptions): Promise<ImportCounts> {
  // Opening migrates the target's schema (or says why it cannot be reached).
  await (await PostgresLedger.open(target)).close();
  const src = new Database(sqliteFile, { readonly: true, fileMustExist: true });
  const client = new pg.Client({
    ...parseIntoClientConfig(target.url),
    ...(target.password !== undefined && { password: target.password }),
    application_name: 'poller ledger migrate',
  });
  await client.connect();
  const counts: ImportCounts = {
    files: 0,
    pluginRuns: 0,
    sources: 0,
    digests: 0,
    events: 0,
    volumes: 0,
    volumeMembers: 0,
    volumeFiles: 0,
    volumeRuns: 0,
  };
  try {
    await client.query('BEGIN');
    const existing = await client.query<{ n: string }>('SELECT count(*) AS n FROM files');
    if (Number(existing.rows[0]?.n ?? 0) > 0)
      throw new PermanentError(
        'POLLER_LEDGER_TARGET_NOT_EMPTY',
        `ledger ${target.displayUrl} already has file versions; migrate into an empty database`,
      );
    for (const t of TABLES) {
      let after = -1;
      for (;;) {
        const rows = src
          .prepare(`SELECT rowid AS _rowid, * FROM ${t.name} WHERE ${t.key} > ? ORDER BY ${t.key} LIMIT ?`)
          .all(after, BATCH) as Array<Record<string, unknown>>;
        if (rows.length === 0) break;
        after = Number(rows[rows.length - 1]?.[t.key === 'rowid' ? '_rowid' : t.key]);
        const out = rows.map(({ _rowid, ...r }) => {
          for (const c of t.json) r[c] = JSON.parse(String(r[c] ?? 'null'));
          return r;
        });
        // One parameter per batch: the rows as JSON, expanded into the table's own row type.
        await client.query(
          `INSERT INTO ${t.name} OVERRIDING SYSTEM VALUE
           SELECT * FROM json_populate_recordset(NULL::${t.name}, $1::json)`,
          [JSON.stringify(out)],
        );
        counts[t.count] += rows.length;
      }
    }
    // New rows continue after the copied ids.
    for (const [table, column] of [
      ['files', 'id'],
      ['events', 'seq'],
      ['volumes', 'id'],
    ] as const)
      await client.query(
        `SELECT setval(pg_get_serial_sequence('${table}', '${column}'), GREATEST((SELECT max(${column}) FROM ${table}), 1))`,
      );
    await client.query('COMMIT');
    return counts;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end().catch(() => undefined);
    src.close();
  }
}
