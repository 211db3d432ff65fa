/**
 * The SQLite side of the volume ledger, on the connection of the file ledger. Every call is one
 * transaction; a claim is a conditional UPDATE, so a daemon and a run-once on one ledger file
 * never run one volume version's plugins at once. Verdict, retry, recovery and prune decisions
 * are the planners of `core/`, shared with the file ledger.
 */
import type Database from 'better-sqlite3';
import type { CompletenessRules } from '../../volumes/completeness.js';
import { CRASHED_VOLUME_RUN_MESSAGE, isStaleClaim } from '../core/crash.js';
import { PruneBudget } from '../core/prune.js';
import { retryStates, runsToRetry } from '../core/retry.js';
import { runEndValues, volumeVerdict } from '../core/verdict.js';
import { assessVersion, knownMembers, planJoin, volumeRowFact } from '../core/volume-join.js';
import { volumeOutcomeEvents } from '../outbox-routes.js';
import type { EventFact, PruneRules, VolumeEventKind } from '../records.js';
import type {
  LandedFile,
  MemberArrival,
  VolumeCounts,
  VolumeLedger,
  VolumeQuery,
  VolumeRecord,
  VolumeResult,
  VolumeRunRecord,
  VolumeRunStart,
  VolumeState,
} from '../volume-ledger.js';
import { toVolumeRecord, toVolumeRun, type VolumeRow } from '../volume-rows.js';
import { ClaimLostSignal, eachInSavepoint } from './savepoints.js';
import { prepareVolumeStatements, type VolumeStatements } from './volume-statements.js';

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
  #cached: VolumeStatements | undefined;

  constructor(db: Database.Database, emit: VolumeEventWriter = () => undefined) {
    this.#db = db;
    this.#emit = emit;
  }

  /** Prepared on first use: a read-only ledger (`poller volumes`) never prepares the writes. */
  get #s(): VolumeStatements {
    this.#cached ??= prepareVolumeStatements(this.#db);
    return this.#cached;
  }

  /** The event fact of a volume version as it is now (inside the transition's transaction). */
  #fact(id: number): { source: string; fact: EventFact } {
    const row = this.#s.byId.get(id) as VolumeRow;
    return { source: row.source, fact: volumeRowFact(row, this.#s.members.all(id)) };
  }

  #record(row: VolumeRow): VolumeRecord {
    return toVolumeRecord(row, this.#s.members.all(row.id));
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
          const id = this.#join(source, a, rules, nowMs);
          if (id !== undefined) touched.add(id);
        }
        for (const id of touched) this.#assess(id, rules, nowMs);
      })
      .immediate();
    return this.#records([...touched]);
  }

  /** One arrival joins the latest version of its volume (or a new one); returns the version it joined. */
  #join(source: string, a: MemberArrival, rules: CompletenessRules, nowMs: number): number | undefined {
    const s = this.#s;
    // Looked at already (a concurrent stage took the same batch): nothing to do.
    const seen = s.examinedVolume.get(a.fileId);
    if (seen && seen.volume_id !== null) return undefined;
    const latest = s.latest.get(source, a.key);
    const known = latest && latest.state !== 'collecting' ? knownMembers(s.members.all(latest.id)) : new Map();
    const plan = planJoin(latest, known, a, rules);
    let id: number;
    if (plan.kind === 'late' && latest) {
      // Recorded (`why` tells it arrived late), the volume's runs stand.
      s.belongs.run({ file: a.fileId, volume: latest.id, member: a.member });
      return undefined;
    }
    if (plan.kind === 'reopen' && latest) id = this.#reopen(latest, plan.supersede, a.fields, nowMs);
    else if (latest) id = latest.id;
    else id = this.#insert(source, a.key, 1, a.fields, a.landedMs, a.landedMs, nowMs);
    s.putMember.run({
      volume: id,
      member: a.member,
      file: a.fileId,
      path: a.path,
      version: a.version,
      local: a.localPath,
      size: a.sizeBytes,
      mtime: a.mtimeMs,
      landed: a.landedMs,
    });
    s.belongs.run({ file: a.fileId, volume: id, member: a.member });
    return id;
  }

  /** The next version of a volume that left collecting: its members (and late ones) carried over. */
  #reopen(row: VolumeRow, supersede: boolean, fields: Readonly<Record<string, string>>, nowMs: number): number {
    const s = this.#s;
    if (supersede) s.supersede.run({ id: row.id, now: nowMs });
    const next = this.#insert(
      row.source,
      row.key,
      row.version + 1,
      fields,
      row.first_member_ms,
      row.last_member_ms,
      nowMs,
    );
    s.copyMembers.run({ from: row.id, to: next });
    // Late members recorded against the old version (not run with it) join the new one.
    s.copyLate.run({ from: row.id, to: next });
    return next;
  }

  #insert(
    source: string,
    key: string,
    version: number,
    fields: Readonly<Record<string, string>>,
    first: number,
    last: number,
    now: number,
  ): number {
    const info = this.#s.insert.run({ source, key, version, fields: JSON.stringify(fields), first, last, now });
    return Number(info.lastInsertRowid);
  }

  /**
   * `poller forget` of these file versions, inside the file ledger's transaction (before their
   * rows go): a collecting volume loses them as members; a volume that left collecting keeps
   * them as its history, marked forgotten, so the same file coming back reopens it.
   */
  forgetFiles(fileIds: readonly number[]): void {
    if (fileIds.length === 0) return;
    const ids = JSON.stringify(fileIds);
    this.#s.forgetCollecting.run(ids);
    this.#s.forgetMembers.run(ids);
  }

  /** Recompute digest, member times and (for a collecting version) the state. */
  #assess(id: number, rules: CompletenessRules, nowMs: number): boolean {
    const s = this.#s;
    const row = s.byId.get(id) as VolumeRow;
    const a = assessVersion(row, s.members.all(id), rules, nowMs);
    if (!a) return false;
    s.assessed.run({
      id,
      digest: a.digest,
      first: a.first,
      last: a.last,
      state: a.state,
      partial: a.partial,
      closed: a.closed,
      now: nowMs,
    });
    if (a.closes) {
      const { source, fact } = this.#fact(id);
      this.#emit(a.state === 'partial' ? 'volume-partial' : 'volume-complete', source, id, fact, nowMs);
    }
    return a.closes;
  }

  async closeDue(source: string, rules: CompletenessRules, nowMs: number): Promise<VolumeRecord[]> {
    if (rules.completeAfterMs === undefined) return [];
    const before = nowMs - rules.completeAfterMs;
    const closed: number[] = [];
    this.#db
      .transaction(() => {
        for (const { id } of this.#s.quiet.all({ source, before })) if (this.#assess(id, rules, nowMs)) closed.push(id);
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
    for (const id of ids) out.set(id, this.#s.runs.all(id).map(toVolumeRun));
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
    return eachInSavepoint(this.#db, results, (r) => this.#finishOne(r, owner, nowMs));
  }

  #finishOne(r: VolumeResult, owner: string, nowMs: number): VolumeState {
    const { id, outcomes } = r;
    const s = this.#s;
    const row = s.byId.get(id);
    if (!row || row.claimed_by !== owner) throw new ClaimLostSignal();
    for (const o of outcomes) s.runEnd.run({ id, plugin: o.plugin, now: nowMs, ...runEndValues(o, nowMs) });
    const { verdict, counted } = volumeVerdict(s.runs.all(id), r.configured, nowMs);
    s.finished.run({ id, ...verdict, now: nowMs });
    // Inside this volume's savepoint: a lost claim writes no event.
    const { source, fact } = this.#fact(id);
    for (const e of volumeOutcomeEvents(fact, verdict.state, outcomes, counted))
      this.#emit(e.kind, source, id, e.fact, nowMs);
    return verdict.state;
  }

  async recoverStaleVolumes(nowMs: number, isOwnerGone: (owner: string) => boolean): Promise<number> {
    const s = this.#s;
    let n = 0;
    this.#db
      .transaction(() => {
        for (const row of s.claimed.all()) {
          if (!isStaleClaim(row, nowMs, isOwnerGone)) continue;
          n += s.unclaim.run({ id: row.id, owner: row.claimed_by, now: nowMs }).changes;
          // Not recorded as a success: it runs again, its attempt already counted (no crash loop).
          s.crashedRuns.run({ id: row.id, now: nowMs, error: CRASHED_VOLUME_RUN_MESSAGE });
        }
      })
      .immediate();
    return n;
  }

  async retryVolumes(
    f: { source?: string; plugin?: string; key?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]> {
    const s = this.#s;
    const ids: number[] = [];
    const states = JSON.stringify(retryStates(f.includeQuarantined));
    this.#db
      .transaction(() => {
        for (const { id } of s.retryable.all({ states, source: f.source ?? null, key: f.key ?? null })) {
          const runs = runsToRetry(s.runs.all(id), f);
          if (runs.length === 0) continue;
          for (const r of runs) s.retryRun.run({ id, plugin: r.plugin, now: nowMs });
          s.retryVolume.run({ id, now: nowMs });
          ids.push(id);
        }
      })
      .immediate();
    return ids;
  }

  async volumes(q: VolumeQuery): Promise<VolumeRecord[]> {
    const params = { source: q.source ?? null, state: q.state ?? null, key: q.key ?? null, limit: q.limit ?? 100 };
    return this.#s.query.all(params).map((r) => this.#record(r));
  }

  async volumesOfPath(source: string, p: string): Promise<VolumeRecord[]> {
    return this.#s.ofPath.all(source, p, p).map((r) => this.#record(r));
  }

  async pruneVolumes(
    rules: PruneRules,
    opts: { readonly limit: number; readonly dryRun?: boolean },
  ): Promise<{ volumes: number; more: boolean }> {
    const s = this.#s;
    const budget = new PruneBudget(opts.limit);
    const configured = rules.volumePlugins ? JSON.stringify(rules.volumePlugins) : null;
    let volumes = 0;
    this.#db
      .transaction(() => {
        for (const w of rules.windows) {
          if (!budget.open()) break;
          const found = s.prunable.all({
            source: w.source,
            before: w.mtimeBeforeMs,
            quarantinedBefore: rules.quarantinedBeforeMs,
            configured,
            limit: budget.ask,
          });
          for (const { id } of budget.take(found)) {
            if (!opts.dryRun) s.deleteVolume.run(id);
            volumes++;
          }
        }
      })
      .immediate();
    return { volumes, more: budget.more };
  }

  async volumeCounts(): Promise<VolumeCounts[]> {
    return this.#s.counts
      .all()
      .map((r) => ({ source: r.source, state: r.state, count: r.count, oldestLastMemberMs: r.oldest }));
  }
}
