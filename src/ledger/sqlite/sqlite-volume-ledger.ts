/**
 * The SQLite side of the volume ledger, on the connection of the file ledger. Every call is one
 * transaction; a claim is a conditional UPDATE, so a daemon and a run-once on one ledger file
 * never run one volume version's plugins at once.
 */
import type Database from 'better-sqlite3';
import type { EmittedOutput } from '../../plugins/api.js';
import { assessVolume, type CompletenessRules, lateMemberAction } from '../../volumes/completeness.js';
import { volumeVersion } from '../../volumes/group.js';
import type { EventFact, PruneRules, VolumeEventKind } from '../ledger.js';
import { volumeFact, volumeOutcomeEvents } from '../outbox-routes.js';
import type {
  LandedFile,
  MemberArrival,
  VolumeCounts,
  VolumeLedger,
  VolumeMemberRecord,
  VolumeQuery,
  VolumeRecord,
  VolumeResult,
  VolumeRunRecord,
  VolumeRunStart,
  VolumeState,
} from '../volume-ledger.js';

interface VolumeRow {
  id: number;
  source: string;
  key: string;
  version: number;
  digest: string;
  fields: string;
  state: VolumeState;
  partial: number;
  first_member_ms: number;
  last_member_ms: number;
  closed_ms: number | null;
  done_ms: number | null;
  claimed_by: string | null;
  lease_until_ms: number | null;
  next_retry_ms: number | null;
  error_code: string | null;
  last_error: string | null;
  updated_ms: number;
}

interface MemberRow {
  volume_id: number;
  member: string;
  file_id: number;
  path: string;
  file_version: string;
  local_path: string;
  size_bytes: number;
  mtime_ms: number;
  landed_ms: number;
  forgotten: number;
}

interface VolumeRunRow {
  volume_id: number;
  plugin: string;
  state: VolumeRunRecord['state'];
  attempts: number;
  error_code: string | null;
  last_error: string | null;
  duration_ms: number | null;
  next_retry_ms: number | null;
  outputs: string;
  updated_ms: number;
}

const CRASHED_RUN_MESSAGE =
  'the poller stopped during this volume run (killed, crashed or out of memory); counted as an attempt';

/** States a member change supersedes: handed on (or failed) but not being run now. */
const SUPERSEDABLE = new Set<VolumeState>(['complete', 'partial', 'failed']);

function clip(text: string): string {
  const line = text.replace(/\s*\n\s*/g, ' ');
  return line.length > 1000 ? `${line.slice(0, 997)}...` : line;
}

function toMember(r: MemberRow): VolumeMemberRecord {
  return {
    member: r.member,
    fileId: r.file_id,
    path: r.path,
    version: r.file_version,
    localPath: r.local_path,
    sizeBytes: r.size_bytes,
    mtimeMs: r.mtime_ms,
    landedMs: r.landed_ms,
  };
}

function toRun(r: VolumeRunRow): VolumeRunRecord {
  return {
    volumeId: r.volume_id,
    plugin: r.plugin,
    state: r.state,
    attempts: r.attempts,
    errorCode: r.error_code,
    lastError: r.last_error,
    durationMs: r.duration_ms,
    nextRetryMs: r.next_retry_ms,
    outputs: parseOutputs(r.outputs),
    updatedMs: r.updated_ms,
  };
}

function parseOutputs(text: string): EmittedOutput[] {
  try {
    return JSON.parse(text) as EmittedOutput[];
  } catch {
    return [];
  }
}

/** Thrown inside a savepoint to undo one volume's writes whose claim was lost. */
class ClaimLostSignal extends Error {}

/** Writes a volume event's outbox rows (one per sink that wants it) in the caller's transaction. */
export type VolumeEventWriter = (
  kind: VolumeEventKind,
  source: string,
  volumeId: number,
  fact: EventFact,
  nowMs: number,
) => void;

export class SqliteVolumeLedger implements VolumeLedger {
  readonly #db: Database.Database;
  readonly #emit: VolumeEventWriter;
  #cached: ReturnType<typeof prepare> | undefined;

  constructor(db: Database.Database, emit: VolumeEventWriter = () => undefined) {
    this.#db = db;
    this.#emit = emit;
  }

  /** The event fact of a volume version as it is now (inside the transition's transaction). */
  #fact(id: number): { source: string; fact: EventFact } {
    const row = this.#s.byId.get(id) as VolumeRow;
    const members = this.#s.members.all(id).map((m) => ({
      member: m.member,
      fileId: m.file_id,
      path: m.path,
      sizeBytes: m.size_bytes,
      mtimeMs: m.mtime_ms,
    }));
    const fact = volumeFact(
      {
        id,
        key: row.key,
        version: row.version,
        fields: JSON.parse(row.fields) as Record<string, string>,
        partial: row.partial === 1,
        firstMemberMs: row.first_member_ms,
        lastMemberMs: row.last_member_ms,
      },
      members,
    );
    return { source: row.source, fact };
  }

  /** Prepared on first use: a read-only ledger (`poller volumes`) never prepares the writes. */
  get #s(): ReturnType<typeof prepare> {
    this.#cached ??= prepare(this.#db);
    return this.#cached;
  }

  #record(row: VolumeRow): VolumeRecord {
    return {
      id: row.id,
      source: row.source,
      key: row.key,
      version: row.version,
      digest: row.digest,
      fields: JSON.parse(row.fields) as Record<string, string>,
      state: row.state,
      partial: row.partial === 1,
      firstMemberMs: row.first_member_ms,
      lastMemberMs: row.last_member_ms,
      closedMs: row.closed_ms,
      doneMs: row.done_ms,
      claimedBy: row.claimed_by,
      leaseUntilMs: row.lease_until_ms,
      nextRetryMs: row.next_retry_ms,
      errorCode: row.error_code,
      lastError: row.last_error,
      updatedMs: row.updated_ms,
      members: this.#s.members.all(row.id).map(toMember),
    };
  }

  #records(ids: readonly number[]): VolumeRecord[] {
    return ids.map((id) => this.#record(this.#s.byId.get(id) as VolumeRow));
  }

  async landedFiles(source: string, sinceMs: number, limit: number): Promise<LandedFile[]> {
    return this.#s.landed.all({ source, since: sinceMs, limit }).map((r) => ({
      fileId: r.id,
      path: r.path,
      version: `${r.size_bytes}:${r.mtime_ms}`,
      localPath: r.local_path,
      sizeBytes: r.size_bytes,
      mtimeMs: r.mtime_ms,
      landedMs: r.fetched_ms,
    }));
  }

  async assignMembers(
    source: string,
    arrivals: readonly MemberArrival[],
    examined: readonly number[],
    rules: CompletenessRules,
    nowMs: number,
  ): Promise<VolumeRecord[]> {
    const s = this.#s;
    const touched = new Set<number>();
    this.#db
      .transaction(() => {
        for (const id of examined) s.examine.run(id);
        const ordered = [...arrivals].sort((a, b) => a.landedMs - b.landedMs || a.fileId - b.fileId);
        for (const a of ordered) {
          // Looked at already (a concurrent stage took the same batch): nothing to do.
          const seen = s.examinedVolume.get(a.fileId);
          if (seen && seen.volume_id !== null) continue;
          let row = s.latest.get(source, a.key);
          if (row && row.state !== 'collecting') {
            // A member is its path and its file version: a moment re-sent under another name changed too.
            // A forgotten member is never "already there": its file coming back reruns the volume.
            const known = new Map(
              s.members
                .all(row.id)
                .map((m) => [m.member, m.forgotten ? '\0forgotten' : `${m.path}\0${m.file_version}`]),
            );
            const arriving = { member: a.member, version: `${a.path}\0${a.version}` };
            if (lateMemberAction(known, arriving, rules) === 'ignore') {
              // Recorded (`why` tells it arrived late), the volume's runs stand.
              s.belongs.run({ file: a.fileId, volume: row.id, member: a.member });
              continue;
            }
            if (SUPERSEDABLE.has(row.state) && row.claimed_by === null) s.supersede.run({ id: row.id, now: nowMs });
            const next = Number(
              s.insert.run({
                source,
                key: a.key,
                version: row.version + 1,
                fields: JSON.stringify(a.fields),
                first: row.first_member_ms,
                last: row.last_member_ms,
                now: nowMs,
              }).lastInsertRowid,
            );
            s.copyMembers.run({ from: row.id, to: next });
            // Late members recorded against the old version (not run with it) join the new one.
            s.copyLate.run({ from: row.id, to: next });
            row = s.byId.get(next) as VolumeRow;
          } else if (!row) {
            const id = Number(
              s.insert.run({
                source,
                key: a.key,
                version: 1,
                fields: JSON.stringify(a.fields),
                first: a.landedMs,
                last: a.landedMs,
                now: nowMs,
              }).lastInsertRowid,
            );
            row = s.byId.get(id) as VolumeRow;
          }
          s.putMember.run({
            volume: row.id,
            member: a.member,
            file: a.fileId,
            path: a.path,
            version: a.version,
            local: a.localPath,
            size: a.sizeBytes,
            mtime: a.mtimeMs,
            landed: a.landedMs,
          });
          s.belongs.run({ file: a.fileId, volume: row.id, member: a.member });
          touched.add(row.id);
        }
        for (const id of touched) this.#assess(id, rules, nowMs);
      })
      .immediate();
    return this.#records([...touched]);
  }

  /**
   * `poller forget` of these file versions, inside the file ledger's transaction (before their
   * rows go): a collecting volume loses them as members; a volume that left collecting keeps
   * them as its history, marked forgotten, so the same file coming back reopens it.
   */
  forgetFiles(fileIds: readonly number[]): void {
    if (fileIds.length === 0) return;
    const ids = JSON.stringify(fileIds);
    this.#db
      .prepare(
        `DELETE FROM volume_members WHERE file_id IN (SELECT value FROM json_each(?))
           AND volume_id IN (SELECT id FROM volumes WHERE state = 'collecting')`,
      )
      .run(ids);
    this.#db
      .prepare('UPDATE volume_members SET forgotten = 1 WHERE file_id IN (SELECT value FROM json_each(?))')
      .run(ids);
  }

  /** Recompute digest, member times and (for a collecting version) the state. */
  #assess(id: number, rules: CompletenessRules, nowMs: number): boolean {
    const s = this.#s;
    const row = s.byId.get(id) as VolumeRow;
    const members = s.members.all(id);
    if (members.length === 0) return false;
    const a = assessVolume(
      members.map((m) => ({ member: m.member, seenAtMs: m.landed_ms })),
      rules,
      nowMs,
    );
    const digest = volumeVersion(
      members.map((m) => ({ member: m.member, path: m.path, version: m.file_version, seenAtMs: m.landed_ms })),
    );
    const closes = row.state === 'collecting' && a.state !== 'collecting';
    s.assessed.run({
      id,
      digest,
      first: a.firstMemberAtMs,
      last: a.lastMemberAtMs,
      state: closes ? a.state : row.state,
      partial: closes && a.state === 'partial' ? 1 : row.partial,
      closed: closes ? nowMs : row.closed_ms,
      now: nowMs,
    });
    if (closes) {
      const { source, fact } = this.#fact(id);
      this.#emit(a.state === 'partial' ? 'volume-partial' : 'volume-complete', source, id, fact, nowMs);
    }
    return closes;
  }

  async closeDue(source: string, rules: CompletenessRules, nowMs: number): Promise<VolumeRecord[]> {
    if (rules.completeAfterMs === undefined) return [];
    const closed: number[] = [];
    this.#db
      .transaction(() => {
        for (const { id } of this.#s.quiet.all({ source, before: nowMs - rules.completeAfterMs! })) {
          if (this.#assess(id, rules, nowMs)) closed.push(id);
        }
      })
      .immediate();
    return this.#records(closed);
  }

  async claimVolumes(
    source: string,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<VolumeRecord[]> {
    const s = this.#s;
    const got: number[] = [];
    this.#db
      .transaction(() => {
        for (const { id } of s.claimable.all({ source, now: nowMs, limit })) {
          if (s.claim.run({ id, owner, lease: leaseUntilMs, now: nowMs }).changes === 1) got.push(id);
        }
      })
      .immediate();
    return this.#records(got);
  }

  async volumeRuns(ids: readonly number[]): Promise<Map<number, VolumeRunRecord[]>> {
    const out = new Map<number, VolumeRunRecord[]>(ids.map((id) => [id, []]));
    for (const id of ids) out.set(id, this.#s.runs.all(id).map(toRun));
    return out;
  }

  async markVolumeRunning(runs: readonly VolumeRunStart[], nowMs: number): Promise<number[]> {
    const attempts: number[] = [];
    this.#db.transaction(() => {
      for (const r of runs)
        attempts.push(
          (this.#s.runStart.get({ id: r.volumeId, plugin: r.plugin, now: nowMs }) as { attempts: number }).attempts,
        );
    })();
    return attempts;
  }

  async finishVolumes(
    results: readonly VolumeResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<VolumeState | 'claim-lost'>> {
    const states: Array<VolumeState | 'claim-lost'> = [];
    this.#db
      .transaction(() => {
        for (const r of results) {
          try {
            states.push(this.#db.transaction(() => this.#finishOne(r, owner, nowMs))());
          } catch (err) {
            if (!(err instanceof ClaimLostSignal)) throw err;
            states.push('claim-lost');
          }
        }
      })
      .immediate();
    return states;
  }

  #finishOne(r: VolumeResult, owner: string, nowMs: number): VolumeState {
    const { id, outcomes } = r;
    const s = this.#s;
    const row = s.byId.get(id);
    if (!row || row.claimed_by !== owner) throw new ClaimLostSignal();
    for (const o of outcomes) {
      s.runEnd.run({
        id,
        plugin: o.plugin,
        state: o.ok ? 'succeeded' : o.quarantine ? 'quarantined' : 'failed',
        code: o.ok ? null : (o.errorCode ?? 'POLLER_PLUGIN_FAILED'),
        error: o.ok ? null : clip(o.message ?? 'failed'),
        duration: Math.round(o.durationMs),
        retry: o.ok || o.quarantine ? null : (o.nextRetryMs ?? nowMs),
        outputs: JSON.stringify(o.outputs),
        now: nowMs,
        uncounted: o.notCounted ? 1 : 0,
      });
    }
    // Runs of plugins removed from the config are owed nothing (else such a volume stays failed forever).
    const runs = s.runs.all(id).filter((run) => !r.configured || r.configured.includes(run.plugin));
    const failed = runs.filter((r) => r.state === 'failed');
    const quarantined = runs.filter((r) => r.state === 'quarantined');
    const state: VolumeState = failed.length > 0 ? 'failed' : quarantined.length > 0 ? 'quarantined' : 'processed';
    const errRun = failed[0] ?? quarantined[0];
    s.finished.run({
      id,
      state,
      code: errRun?.error_code ?? null,
      error: errRun ? clip(`${errRun.plugin}: ${errRun.last_error ?? 'failed'}`) : null,
      retry: state === 'failed' ? Math.min(...failed.map((r) => r.next_retry_ms ?? nowMs)) : null,
      done: state === 'failed' ? null : nowMs,
      now: nowMs,
    });
    // Inside this volume's savepoint: a lost claim writes no event.
    const { source, fact } = this.#fact(id);
    for (const e of volumeOutcomeEvents(fact, state, outcomes, runs)) this.#emit(e.kind, source, id, e.fact, nowMs);
    return state;
  }

  async recoverStaleVolumes(nowMs: number, isOwnerGone: (owner: string) => boolean): Promise<number> {
    const s = this.#s;
    let n = 0;
    this.#db
      .transaction(() => {
        for (const row of s.claimed.all()) {
          const expired = row.lease_until_ms === null || row.lease_until_ms <= nowMs;
          if (!expired && !isOwnerGone(row.claimed_by as string)) continue;
          n += s.unclaim.run({ id: row.id, owner: row.claimed_by, now: nowMs }).changes;
          // Not recorded as a success: it runs again, its attempt already counted (no crash loop).
          s.crashedRuns.run({ id: row.id, now: nowMs, error: CRASHED_RUN_MESSAGE });
        }
      })
      .immediate();
    return n;
  }

  async retryVolumes(
    f: { source?: string; plugin?: string; key?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]> {
    const ids: number[] = [];
    const states = f.includeQuarantined ? ['failed', 'quarantined'] : ['failed'];
    this.#db
      .transaction(() => {
        const rows = this.#db
          .prepare<Record<string, unknown>, { id: number }>(
            `SELECT id FROM volumes WHERE state IN (SELECT value FROM json_each(@states)) AND claimed_by IS NULL
               AND (@source IS NULL OR source = @source) AND (@key IS NULL OR key = @key)`,
          )
          .all({ states: JSON.stringify(states), source: f.source ?? null, key: f.key ?? null });
        for (const { id } of rows) {
          const runs = this.#s.runs
            .all(id)
            .filter((r) => states.includes(r.state) && (!f.plugin || r.plugin === f.plugin));
          if (runs.length === 0) continue;
          for (const r of runs) this.#s.retryRun.run({ id, plugin: r.plugin, now: nowMs });
          this.#s.retryVolume.run({ id, now: nowMs });
          ids.push(id);
        }
      })
      .immediate();
    return ids;
  }

  async volumes(q: VolumeQuery): Promise<VolumeRecord[]> {
    const rows = this.#db
      .prepare<Record<string, unknown>, VolumeRow>(
        `SELECT * FROM volumes WHERE (@source IS NULL OR source = @source) AND (@state IS NULL OR state = @state)
           AND (@key IS NULL OR key = @key) ORDER BY last_member_ms DESC, id DESC LIMIT @limit`,
      )
      .all({ source: q.source ?? null, state: q.state ?? null, key: q.key ?? null, limit: q.limit ?? 100 });
    return rows.map((r) => this.#record(r));
  }

  async volumesOfPath(source: string, p: string): Promise<VolumeRecord[]> {
    const rows = this.#db
      .prepare<[string, string, string], VolumeRow>(
        `SELECT v.* FROM volumes v WHERE v.source = ? AND (
           v.id IN (SELECT volume_id FROM volume_members WHERE path = ?)
           OR v.id IN (SELECT vf.volume_id FROM volume_files vf JOIN files f ON f.id = vf.file_id WHERE f.path = ?))
         ORDER BY v.version DESC`,
      )
      .all(source, p, p);
    return rows.map((r) => this.#record(r));
  }

  async pruneVolumes(
    rules: PruneRules,
    opts: { readonly limit: number; readonly dryRun?: boolean },
  ): Promise<{ volumes: number; more: boolean }> {
    let volumes = 0;
    let more = false;
    this.#db
      .transaction(() => {
        let budget = opts.limit;
        for (const w of rules.windows) {
          if (budget <= 0) {
            more = true;
            break;
          }
          const ids = this.#s.prunable.all({
            source: w.source,
            before: w.mtimeBeforeMs,
            quarantinedBefore: rules.quarantinedBeforeMs,
            configured: rules.volumePlugins ? JSON.stringify(rules.volumePlugins) : null,
            limit: budget + 1,
          });
          if (ids.length > budget) more = true;
          for (const { id } of ids.slice(0, budget)) {
            if (!opts.dryRun) this.#s.deleteVolume.run(id);
            volumes++;
          }
          budget -= Math.min(ids.length, budget);
        }
      })
      .immediate();
    return { volumes, more };
  }

  async volumeCounts(): Promise<VolumeCounts[]> {
    return this.#db
      .prepare<[], { source: string; state: VolumeState; count: number; oldest: number | null }>(
        'SELECT source, state, COUNT(*) AS count, MIN(last_member_ms) AS oldest FROM volumes GROUP BY source, state ORDER BY source, state',
      )
      .all()
      .map((r) => ({ source: r.source, state: r.state, count: r.count, oldestLastMemberMs: r.oldest }));
  }
}

function prepare(db: Database.Database) {
  return {
    byId: db.prepare<[number], VolumeRow>('SELECT * FROM volumes WHERE id = ?'),
    latest: db.prepare<[string, string], VolumeRow>(
      'SELECT * FROM volumes WHERE source = ? AND key = ? ORDER BY version DESC LIMIT 1',
    ),
    members: db.prepare<[number], MemberRow>('SELECT * FROM volume_members WHERE volume_id = ? ORDER BY member'),
    // Landed versions not yet looked at; superseded ones are left out (their bytes are a newer version's).
    landed: db.prepare<
      { source: string; since: number; limit: number },
      { id: number; path: string; size_bytes: number; mtime_ms: number; local_path: string; fetched_ms: number }
    >(
      `SELECT f.id, f.path, f.size_bytes, f.mtime_ms, f.local_path, f.fetched_ms FROM files f
       WHERE f.source = @source AND f.fetched_ms >= @since AND f.local_path IS NOT NULL
         AND f.state IN ('fetched', 'processing', 'processed', 'failed', 'quarantined')
         AND NOT EXISTS (SELECT 1 FROM volume_files vf WHERE vf.file_id = f.id)
       ORDER BY f.fetched_ms, f.id LIMIT @limit`,
    ),
    examine: db.prepare('INSERT OR IGNORE INTO volume_files (file_id, volume_id) VALUES (?, NULL)'),
    examinedVolume: db.prepare<[number], { volume_id: number | null }>(
      'SELECT volume_id FROM volume_files WHERE file_id = ?',
    ),
    belongs: db.prepare(
      `INSERT INTO volume_files (file_id, volume_id, member) VALUES (@file, @volume, @member)
       ON CONFLICT (file_id) DO UPDATE SET volume_id = excluded.volume_id, member = excluded.member`,
    ),
    insert: db.prepare(
      `INSERT INTO volumes (source, key, version, digest, fields, state, first_member_ms, last_member_ms, updated_ms)
       VALUES (@source, @key, @version, '', @fields, 'collecting', @first, @last, @now)`,
    ),
    copyMembers: db.prepare(
      `INSERT INTO volume_members (volume_id, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms)
       SELECT @to, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms
       FROM volume_members WHERE volume_id = @from AND forgotten = 0`,
    ),
    // Late members: files recorded against the old version for a member it did not have (a file
    // that replaced a member while collecting is not one); the latest per member wins.
    copyLate: db.prepare(
      `INSERT INTO volume_members (volume_id, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms)
       SELECT @to, vf.member, f.id, f.path, f.size_bytes || ':' || f.mtime_ms, f.local_path, f.size_bytes, f.mtime_ms, f.fetched_ms
       FROM volume_files vf JOIN files f ON f.id = vf.file_id
       WHERE vf.volume_id = @from AND vf.member IS NOT NULL AND f.local_path IS NOT NULL
         AND vf.member NOT IN (SELECT member FROM volume_members WHERE volume_id = @from)
       ORDER BY f.fetched_ms DESC, f.id DESC
       ON CONFLICT (volume_id, member) DO NOTHING`,
    ),
    putMember: db.prepare(
      `INSERT INTO volume_members (volume_id, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms)
       VALUES (@volume, @member, @file, @path, @version, @local, @size, @mtime, @landed)
       ON CONFLICT (volume_id, member) DO UPDATE SET file_id = excluded.file_id, path = excluded.path,
         file_version = excluded.file_version, local_path = excluded.local_path, size_bytes = excluded.size_bytes,
         mtime_ms = excluded.mtime_ms, landed_ms = excluded.landed_ms, forgotten = 0`,
    ),
    supersede: db.prepare(
      `UPDATE volumes SET state = 'superseded', done_ms = @now, next_retry_ms = NULL, updated_ms = @now WHERE id = @id`,
    ),
    assessed: db.prepare(
      `UPDATE volumes SET digest = @digest, first_member_ms = @first, last_member_ms = @last, state = @state,
         partial = @partial, closed_ms = @closed, updated_ms = @now WHERE id = @id`,
    ),
    quiet: db.prepare<{ source: string; before: number }, { id: number }>(
      `SELECT id FROM volumes WHERE source = @source AND state = 'collecting' AND last_member_ms <= @before`,
    ),
    claimable: db.prepare<{ source: string; now: number; limit: number }, { id: number }>(
      `SELECT id FROM volumes WHERE source = @source AND claimed_by IS NULL
         AND (state IN ('complete', 'partial') OR (state = 'failed' AND next_retry_ms <= @now))
       ORDER BY last_member_ms DESC LIMIT @limit`,
    ),
    claim: db.prepare(
      `UPDATE volumes SET claimed_by = @owner, lease_until_ms = @lease, updated_ms = @now
       WHERE id = @id AND claimed_by IS NULL
         AND (state IN ('complete', 'partial') OR (state = 'failed' AND next_retry_ms <= @now))`,
    ),
    runs: db.prepare<[number], VolumeRunRow>('SELECT * FROM volume_runs WHERE volume_id = ? ORDER BY plugin'),
    runStart: db.prepare(
      `INSERT INTO volume_runs (volume_id, plugin, state, attempts, updated_ms) VALUES (@id, @plugin, 'running', 1, @now)
       ON CONFLICT (volume_id, plugin) DO UPDATE SET state = 'running', attempts = attempts + 1, updated_ms = @now
       RETURNING attempts`,
    ),
    runEnd: db.prepare(
      `INSERT INTO volume_runs (volume_id, plugin, state, attempts, error_code, last_error, duration_ms, next_retry_ms,
         outputs, updated_ms)
       VALUES (@id, @plugin, @state, 0, @code, @error, @duration, @retry, @outputs, @now)
       ON CONFLICT (volume_id, plugin) DO UPDATE SET state = @state, error_code = @code, last_error = @error,
         duration_ms = @duration, next_retry_ms = @retry, outputs = @outputs, updated_ms = @now, attempts = attempts - @uncounted`,
    ),
    finished: db.prepare(
      `UPDATE volumes SET state = @state, error_code = @code, last_error = @error, next_retry_ms = @retry,
         claimed_by = NULL, lease_until_ms = NULL, done_ms = @done, updated_ms = @now WHERE id = @id`,
    ),
    // A failed version is owed only by its failed (or running) runs of plugins still configured.
    prunable: db.prepare<
      { source: string; before: number; quarantinedBefore: number; configured: string | null; limit: number },
      { id: number }
    >(
      `SELECT id FROM volumes WHERE source = @source AND last_member_ms < @before AND claimed_by IS NULL
         AND (state IN ('processed', 'superseded', 'collecting') OR (state = 'quarantined' AND done_ms < @quarantinedBefore)
           OR (state = 'failed' AND @configured IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM volume_runs r WHERE r.volume_id = volumes.id AND r.state IN ('failed', 'running')
               AND r.plugin IN (SELECT value FROM json_each(@configured)))))
       LIMIT @limit`,
    ),
    deleteVolume: db.prepare('DELETE FROM volumes WHERE id = ?'),
    retryRun: db.prepare(
      `UPDATE volume_runs SET state = 'failed', next_retry_ms = @now,
         attempts = CASE WHEN state = 'quarantined' THEN 0 ELSE attempts END WHERE volume_id = @id AND plugin = @plugin`,
    ),
    retryVolume: db.prepare(
      `UPDATE volumes SET state = 'failed', next_retry_ms = @now, done_ms = NULL, updated_ms = @now WHERE id = @id`,
    ),
    claimed: db.prepare<[], VolumeRow>('SELECT * FROM volumes WHERE claimed_by IS NOT NULL'),
    unclaim: db.prepare(
      'UPDATE volumes SET claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now WHERE id = @id AND claimed_by IS @owner',
    ),
    crashedRuns: db.prepare(
      `UPDATE volume_runs SET state = 'failed', error_code = 'POLLER_PLUGIN_CRASHED', last_error = @error, next_retry_ms = @now
       WHERE volume_id = @id AND state = 'running'`,
    ),
  };
}
