/**
 * The ledger contract suites run once per backend: SQLite (a file in a tmp dir) and PostgreSQL
 * (a database of its own on the run's real server; skipped with a notice when PostgreSQL is not
 * installed, an error under CI=true). `reopen` gives a second connection to the same ledger, as
 * a second process would have.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { Ledger } from '../../src/ledger/ledger.js';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { freshDatabase, pgAvailable } from './postgres.js';

export interface OpenedLedger {
  readonly ledger: Ledger;
  /** Another connection to the same ledger. */
  reopen(): Promise<Ledger>;
}

export interface LedgerBackend {
  readonly name: 'sqlite' | 'postgres';
  open(): Promise<OpenedLedger>;
}

const opened: Ledger[] = [];

/** Every ledger a test opened is closed after it, whether it passed or not. */
export function closeLedgersAfterEach(): void {
  afterEach(async () => {
    for (const l of opened.splice(0)) await l.close();
  });
}

function track<T extends Ledger>(l: T): T {
  opened.push(l);
  return l;
}

const sqlite: LedgerBackend = {
  name: 'sqlite',
  async open() {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'poller-ledger-')), 'ledger.db');
    return { ledger: track(new SqliteLedger(file)), reopen: async () => track(new SqliteLedger(file)) };
  },
};

const postgres: LedgerBackend = {
  name: 'postgres',
  async open() {
    const url = await freshDatabase();
    const open = async () => track(await PostgresLedger.open({ url, displayUrl: url }));
    return { ledger: await open(), reopen: open };
  },
};

export const LEDGER_BACKENDS: readonly LedgerBackend[] = pgAvailable ? [sqlite, postgres] : [sqlite];
