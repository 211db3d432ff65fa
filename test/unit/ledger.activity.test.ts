/**
 * The ledger reads behind the status page. `activity`: files fetched per source per slot, by
 * fetch time, from one aggregate query over the covering index; slot 0 ends at `now`, whole
 * slots only (the chart indexes by them). `status`: every source (polled, or only in file rows)
 * with the mtime of its newest landed file, found down the (source, mtime) index.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';

const T0 = Date.UTC(2026, 10, 23, 12);
const SLOT = 5 * 60_000;

async function land(
  l: SqliteLedger,
  source: string,
  name: string,
  size: number,
  fetchedMs: number,
  mtimeMs = T0 - 86_400_000,
): Promise<void> {
  const entry = { path: name, name, type: 'file' as const, sizeBytes: size, mtimeMs, mtimePrecision: 's' as const };
  const { ready } = await l.observe(source, [{ entry }], {
    nowMs: fetchedMs,
    minAgeMs: 0,
    stableListings: 1,
    oldEnoughMs: 0,
  });
  const claimed = await l.claimForFetch(
    ready.map((r) => r.id),
    'me',
    fetchedMs + 60_000,
    fetchedMs,
  );
  await l.markFetched(
    claimed.map((c) => ({ id: c.id, localPath: `/l/${name}`, done: true })),
    'me',
    fetchedMs,
  );
}

it('counts files and bytes per source per whole slot, newest slot 0, nothing outside the window', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'poller-activity-')), 'ledger.db');
  const l = new SqliteLedger(file);
  const now = T0 + 1234;
  await land(l, 'a', 'one.bufr', 10, now - 1000);
  await land(l, 'a', 'two.bufr', 20, now - SLOT + 1);
  await land(l, 'a', 'three.bufr', 40, now - SLOT - 1);
  await land(l, 'b', 'four.bufr', 80, now - 287 * SLOT - 5);
  await land(l, 'b', 'old.bufr', 160, now - 288 * SLOT - 5);
  await land(l, 'b', 'future.bufr', 320, now + 10);
  const slots = await l.activity(now, SLOT, 288);
  expect(slots).toEqual([
    { source: 'a', slot: 0, files: 2, bytes: 30 },
    { source: 'a', slot: 1, files: 1, bytes: 40 },
    { source: 'b', slot: 287, files: 1, bytes: 80 },
  ]);
  await l.close();
  // The chart's query is a range scan of the covering index, not a pass over the table.
  const db = new Database(file, { readonly: true });
  const plan = db
    .prepare(
      `EXPLAIN QUERY PLAN SELECT source, CAST((? - fetched_ms) / ? AS INTEGER) AS slot, COUNT(*), SUM(size_bytes)
       FROM files WHERE fetched_ms > ? AND fetched_ms <= ? GROUP BY source, slot`,
    )
    .all(now, SLOT, now - 288 * SLOT, now) as Array<{ detail: string }>;
  db.close();
  expect(plan.map((p) => p.detail).join('; ')).toMatch(/USING COVERING INDEX files_by_fetched/);
});

it('status: every source once, with the mtime of its newest landed file only', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'poller-status-')), 'ledger.db');
  const l = new SqliteLedger(file);
  await l.recordPoll('polled-only', 'ftp://h/', true, null, T0);
  await land(l, 'a', 'old.bufr', 1, T0, T0 - 3_600_000);
  await land(l, 'a', 'new.bufr', 1, T0, T0 - 60_000);
  // Newer, but only seen (not landed): it does not count as the newest file.
  await l.observe(
    'a',
    [
      {
        entry: { path: 'young.bufr', name: 'young.bufr', type: 'file', sizeBytes: 1, mtimeMs: T0, mtimePrecision: 's' },
      },
    ],
    {
      nowMs: T0,
      minAgeMs: 60_000,
      stableListings: 2,
      oldEnoughMs: 600_000,
    },
  );
  await land(l, 'b', 'b.bufr', 1, T0, T0 - 7_200_000);
  const rows = await l.status();
  expect(rows.map((r) => [r.name, r.newestFetchedMtimeMs])).toEqual([
    ['a', T0 - 60_000],
    ['b', T0 - 7_200_000],
    ['polled-only', null],
  ]);
  expect(rows[0]?.counts).toEqual({ processed: 2, seen: 1 });
  await l.close();
});
