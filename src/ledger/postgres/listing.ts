/**
 * A listing recorded in PostgreSQL, in set form: the digests and latest rows of the whole listing
 * read in a few statements, the plan of `core/sighting.ts` built entry by entry in memory, then
 * each kind of write run as one statement per chunk. In the caller's transaction.
 */
import { ListingPlan, type SightingStep } from '../core/sighting.js';
import type { FileRecord, Observation, ObserveOptions, ObserveResult } from '../records.js';
import { groupByDir, listingDigest } from '../rows.js';
import type { Q } from './pool.js';
import { checkLister } from './sql/check-lister.js';
import { filesByIds } from './sql/read-files.js';
import { readDigests, readLatest } from './sql/read-listing.js';
import {
  dropDigests,
  type InsertColumns,
  insertVersions,
  markReady,
  putDigests,
  regrowVersions,
  sightVersions,
  type VersionColumns,
} from './sql/write-listing.js';

function versionColumns(): VersionColumns {
  return { path: [], size: [], mtime: [], precision: [], etag: [] };
}

function pushVersion(cols: VersionColumns, o: Observation): void {
  cols.path.push(o.entry.path);
  cols.size.push(o.entry.sizeBytes);
  cols.mtime.push(o.entry.mtimeMs);
  cols.precision.push(o.entry.mtimePrecision);
  cols.etag.push(o.entry.etag ?? '');
}

/** The writes of a listing's plan, gathered column by column. */
class ListingWrites {
  readonly inserts: InsertColumns = { ...versionColumns(), state: [], code: [], error: [] };
  readonly regrow = { id: [] as number[], ...versionColumns() };
  readonly sighted: number[] = [];
  readonly digestPut = { dir: [] as string[], digest: [] as string[], rejected: [] as number[] };
  readonly digestDrop: string[] = [];
  /** Ready rows in listing order: an id, or the index of an insert whose id comes back later. */
  readonly ready: Array<{ id: number } | { insert: number }> = [];

  add(o: Observation, step: SightingStep): void {
    switch (step.write) {
      case 'insert':
        pushVersion(this.inserts, o);
        this.inserts.state.push(step.state);
        this.inserts.code.push(step.code);
        this.inserts.error.push(step.error);
        if (step.ready) this.ready.push({ insert: this.inserts.path.length - 1 });
        return;
      case 'regrow':
        this.regrow.id.push(step.id);
        pushVersion(this.regrow, o);
        break;
      case 'sighted':
        this.sighted.push(step.id);
        break;
      case null:
        break;
    }
    if (step.ready) this.ready.push({ id: step.id });
  }

  async run(c: Q, source: string, now: number): Promise<Map<number, number>> {
    const inserted = await insertVersions(c, source, now, this.inserts);
    await regrowVersions(c, now, this.regrow.id, this.regrow);
    await sightVersions(c, now, this.sighted);
    await putDigests(c, source, now, this.digestPut);
    await dropDigests(c, source, this.digestDrop);
    return inserted;
  }
}

export async function recordListing(
  c: Q,
  source: string,
  observations: readonly Observation[],
  opts: ObserveOptions,
): Promise<ObserveResult & { ready: FileRecord[] }> {
  if (opts.lister) await checkLister(c, source, opts.lister);
  const plan = new ListingPlan(observations.length, opts);
  const groups = [...groupByDir(observations)].map(([dir, group]) => ({ dir, group, digest: listingDigest(group) }));
  const stored = await readDigests(
    c,
    source,
    groups.map((g) => g.dir),
  );
  const changed = groups.filter((g) => !plan.answeredByDigest(g.group.length, g.digest, stored.get(g.dir)));
  const latest = await readLatest(
    c,
    source,
    changed.flatMap((g) => g.group.map((o) => o.entry.path)),
  );
  const writes = new ListingWrites();
  for (const g of changed) {
    plan.openDir();
    for (const o of g.group) writes.add(o, plan.sight(o, latest.get(o.entry.path)));
    const d = plan.closeDir(stored.has(g.dir));
    if (d.put) {
      writes.digestPut.dir.push(g.dir);
      writes.digestPut.digest.push(g.digest);
      writes.digestPut.rejected.push(d.rejected);
    } else if (d.drop) writes.digestDrop.push(g.dir);
  }
  const inserted = await writes.run(c, source, opts.nowMs);
  const readyIds: number[] = [];
  for (const r of writes.ready) {
    const id = 'id' in r ? r.id : inserted.get(r.insert);
    if (id !== undefined) readyIds.push(id);
    else plan.notInserted();
  }
  await markReady(c, opts.nowMs, readyIds);
  return { ready: await filesByIds(c, readyIds), counts: plan.counts };
}
