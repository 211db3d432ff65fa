/**
 * Prepared statements under a name of our own: the part of better-sqlite3's `Statement` the
 * ledger uses. Its own type lives in a namespace that declaration files cannot name, so tables
 * of statements built by inference could not be exported otherwise.
 */
import type Database from 'better-sqlite3';

export interface Stmt<P extends unknown[] = unknown[], R = unknown> {
  run(...params: P): Database.RunResult;
  get(...params: P): R | undefined;
  all(...params: P): R[];
}

/** `db.prepare`, with object parameters bound as one argument (better-sqlite3's named parameters). */
export function prep<P extends unknown[] | object = unknown[], R = unknown>(
  db: Database.Database,
  sql: string,
): Stmt<P extends unknown[] ? P : [P], R> {
  return db.prepare(sql) as unknown as Stmt<P extends unknown[] ? P : [P], R>;
}

/** A statement whose rows come back as arrays of column values (no object per row). */
export function prepRaw<P extends unknown[], R extends unknown[]>(db: Database.Database, sql: string): Stmt<P, R> {
  return db.prepare(sql).raw(true) as unknown as Stmt<P, R>;
}
