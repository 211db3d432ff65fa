/**
 * The volume stage of a source: files that landed join their radar volumes, volumes whose quiet
 * time passed are declared partial, and the volume plugins run once per complete or partial
 * volume version. Everything it decides lives in the ledger (the landed files it has not looked
 * at, the members, the claims), so a crash anywhere, or a second process on the same ledger,
 * leaves nothing to be done twice: a volume version is claimed before its plugins run, and a run
 * that dies with its process runs again after restart (its attempt counted).
 */
import type { Logger } from 'pino';
import type { SourceConfig } from '../config/load.js';
import { coerceError, errorCode } from '../errors.js';
import type { Ledger, PluginOutcome } from '../ledger/ledger.js';
import type {
  MemberArrival,
  VolumeLedger,
  VolumeRecord,
  VolumeResult,
  VolumeRunRecord,
  VolumeState,
} from '../ledger/volume-ledger.js';
import type { PluginVolume } from '../plugins/api.js';
import type { PluginRunner, RunOutcome } from '../plugins/runner.js';
import { assessVolume, type CompletenessRules } from '../volumes/completeness.js';
import { type KeyPattern, matchMember } from '../volumes/key-pattern.js';
import { outcomeOf, planRun } from './plugin-outcome.js';
import { volumeFinisher } from './volume-finisher.js';
import type { GatherVolume } from './volume-gather.js';

/** Landed files looked at per ledger call (one transaction each). */
const ASSIGN_BATCH = 500;
/** Volumes claimed per ledger call; their plugins run concurrently (bounded by each plugin's concurrency). */
const CLAIM_BATCH = 16;
/** Batches per stage run; the rest waits for the next cycle (bounded work per call). */
const MAX_BATCHES = 200;
/**
 * Files that landed longer ago than this are not volume members any more: a `volumes:` block added
 * to a source with a long history does not build volumes from months-old files.
 */
export const VOLUME_LOOKBACK_MS = 2 * 86_400_000;
/**
 * A claim is held at least this long, and longer than the volume plugins of one claimed batch can
 * run (every volume's plugins one after the other, at their timeouts): it never expires under a
 * live run. A dead owner on this host is seen at once (owner.ts), so only a takeover waits for it.
 */
const VOLUME_LEASE_MS = 10 * 60_000;
const LEASE_MARGIN_MS = 60_000;

export interface CollectingVolume {
  readonly key: string;
  readonly present: readonly string[];
  readonly missing: readonly string[];
  /** When it will be declared partial if nothing more arrives; absent: never on its own. */
  readonly partialAtMs?: number;
  /** Quiet for the whole quiet time but below the minimum. */
  readonly stale: boolean;
}

export interface VolumeStageSummary {
  /** Member files that joined a volume in this run. */
  members: number;
  complete: number;
  partial: number;
  processed: number;
  failed: number;
  /** Volumes still collecting after this run, newest first (at most 100). */
  collecting: CollectingVolume[];
}

/** Hooks for metrics; a throwing hook is the caller's (cycle.ts wraps them). */
export interface VolumeEvents {
  /** A volume version became complete or partial; `waitMs` from its first member. */
  volumeClosed?(source: string, state: 'complete' | 'partial', waitMs: number): void;
  volumeFinished?(source: string, state: VolumeState): void;
}

export interface VolumeStageDeps {
  ledger: Ledger;
  runner: PluginRunner;
  log: Logger;
  owner: string;
  retryBaseMs: number;
  retryMaxMs: number;
  now?: () => number;
  events?: VolumeEvents;
  /** A landing root per host: members that landed on other instances are fetched here first. */
  gatherVolume?: GatherVolume;
}

export function emptyVolumeSummary(): VolumeStageSummary {
  return { members: 0, complete: 0, partial: 0, processed: 0, failed: 0, collecting: [] };
}

/** Landed files the pattern places in a volume, as the ledger takes them. */
export function toArrivals(
  pattern: KeyPattern,
  landed: Awaited<ReturnType<VolumeLedger['landedFiles']>>,
): MemberArrival[] {
  const out: MemberArrival[] = [];
  for (const f of landed) {
    const m = matchMember(pattern, f.path);
    if (!m) continue;
    const fields = Object.fromEntries(Object.entries(m.fields).filter(([k]) => k !== pattern.member));
    out.push({ ...f, key: m.key, member: m.member, fields });
  }
  return out;
}

/** The volume as a plugin sees it. */
export function pluginVolume(v: VolumeRecord, rules: CompletenessRules, attempt: number): PluginVolume {
  const have = new Set(v.members.map((m) => m.member));
  return {
    key: v.key,
    source: v.source,
    version: v.version,
    fields: v.fields,
    members: v.members.map((m) => ({
      member: m.member,
      localPath: m.localPath,
      remotePath: m.path,
      sizeBytes: m.sizeBytes,
      mtimeMs: m.mtimeMs,
    })),
    complete: !v.partial,
    partial: v.partial,
    missing: rules.expect.filter((e) => !have.has(e)),
    firstMemberMs: v.firstMemberMs,
    lastMemberMs: v.lastMemberMs,
    attempt,
  };
}

/** Collecting volumes of a source that are stale (quiet, below the minimum); bounded to the newest 1000. */
export async function staleVolumeCount(
  ledger: Ledger,
  src: Pick<SourceConfig, 'name' | 'volumes'>,
  nowMs: number,
): Promise<number> {
  if (!ledger.volumes || !src.volumes) return 0;
  const rules = src.volumes.rules;
  let n = 0;
  for (const v of await ledger.volumes.volumes({ source: src.name, state: 'collecting', limit: 1000 })) {
    const a = assessVolume(
      v.members.map((m) => ({ member: m.member, seenAtMs: m.landedMs })),
      rules,
      nowMs,
    );
    if (a.stale) n++;
  }
  return n;
}

/** One run of the stage: what its steps share. */
interface VolumeRun {
  readonly src: Pick<SourceConfig, 'name'>;
  readonly spec: NonNullable<SourceConfig['volumes']>;
  readonly vl: VolumeLedger;
  readonly deps: VolumeStageDeps;
  readonly log: Logger;
  readonly now: () => number;
  readonly signal: AbortSignal;
  readonly summary: VolumeStageSummary;
}

/** Run the volume stage of one source once. Never throws for a plugin's failure. */
export async function runVolumeStage(
  src: Pick<SourceConfig, 'name' | 'volumes'>,
  deps: VolumeStageDeps,
  signal: AbortSignal,
): Promise<VolumeStageSummary> {
  const summary = emptyVolumeSummary();
  const vl = deps.ledger.volumes;
  const spec = src.volumes;
  if (!vl || !spec) return summary;
  const now = deps.now ?? Date.now;
  const run: VolumeRun = { src, spec, vl, deps, log: deps.log.child({ source: src.name }), now, signal, summary };
  await joinMembers(run);
  for (const v of await vl.closeDue(src.name, spec.rules, now())) reportClosed(run, v);
  await runClosedVolumes(run);
  summary.collecting = await collectingVolumes(run);
  return summary;
}

/** Landed files join their volumes, a batch at a time; a volume they complete closes at once. */
async function joinMembers(run: VolumeRun): Promise<void> {
  const { src, spec, vl, now, summary } = run;
  for (let batch = 0; batch < MAX_BATCHES && !run.signal.aborted; batch++) {
    const landed = await vl.landedFiles(src.name, now() - VOLUME_LOOKBACK_MS, ASSIGN_BATCH);
    if (landed.length === 0) break;
    const arrivals = toArrivals(spec.pattern, landed);
    summary.members += arrivals.length;
    const fileIds = landed.map((f) => f.fileId);
    const touched = await vl.assignMembers(src.name, arrivals, fileIds, spec.rules, now());
    // Touched versions were collecting: complete or partial now means it closed in this call.
    for (const v of touched) reportClosed(run, v);
    if (landed.length < ASSIGN_BATCH) break;
  }
}

function reportClosed(run: VolumeRun, v: VolumeRecord): void {
  if (v.state !== 'complete' && v.state !== 'partial') return;
  if (v.state === 'complete') run.summary.complete++;
  else run.summary.partial++;
  const waitMs = (v.closedMs ?? run.now()) - v.firstMemberMs;
  run.deps.events?.volumeClosed?.(run.src.name, v.state, waitMs);
  run.log.info(
    {
      event: v.state === 'complete' ? 'volume.completed' : 'volume.partial',
      volume: v.key,
      volumeVersion: v.version,
      members: v.members.length,
      waitMs,
    },
    `volume ${v.key} ${v.state}`,
  );
}

/**
 * Claims the closed volume versions a batch at a time and runs their plugins. Due-ness is judged
 * at the start of this step: a run that fails now waits for a later stage instead of spinning here.
 */
async function runClosedVolumes(run: VolumeRun): Promise<void> {
  const { src, vl, deps, now } = run;
  const startedMs = now();
  const volumePlugins = deps.runner.plugins.filter((p) => p.kind === 'volume');
  const leaseMs = Math.max(
    VOLUME_LEASE_MS,
    volumePlugins.reduce((n, p) => n + p.timeoutMs, 0) * CLAIM_BATCH + LEASE_MARGIN_MS,
  );
  const finish = volumeFinisher(vl, deps.owner, now);
  for (let batch = 0; batch < MAX_BATCHES && !run.signal.aborted; batch++) {
    const claimed = await vl.claimVolumes(src.name, deps.owner, now() + leaseMs, startedMs, CLAIM_BATCH);
    if (claimed.length === 0) break;
    // Each volume's outcome is recorded as soon as its plugins end (volume-finisher.ts).
    const runs = await vl.volumeRuns(claimed.map((v) => v.id));
    await Promise.all(
      claimed.map(async (v) => {
        const result = await runVolumePlugins(run, v, runs.get(v.id) ?? []);
        reportFinished(run, v, await finish(result));
      }),
    );
  }
}

function reportFinished(run: VolumeRun, v: VolumeRecord, state: VolumeState | 'claim-lost'): void {
  const volume = { volume: v.key, volumeVersion: v.version };
  if (state === 'claim-lost') {
    run.log.warn(
      { event: 'volume.claim_lost', ...volume },
      'cannot finish the volume: the claim was lost (its lease expired and another process took it over)',
    );
    return;
  }
  run.deps.events?.volumeFinished?.(run.src.name, state);
  if (state === 'processed') {
    run.summary.processed++;
    return;
  }
  run.summary.failed++;
  run.log.warn(
    { event: state === 'quarantined' ? 'volume.quarantined' : 'volume.failed', ...volume },
    `volume plugins failed on ${v.key}`,
  );
}

/** The volumes still collecting after this run, newest first (at most 100). */
async function collectingVolumes(run: VolumeRun): Promise<CollectingVolume[]> {
  const t = run.now();
  const out: CollectingVolume[] = [];
  for (const v of await run.vl.volumes({ source: run.src.name, state: 'collecting', limit: 100 })) {
    const a = assessVolume(
      v.members.map((m) => ({ member: m.member, seenAtMs: m.landedMs })),
      run.spec.rules,
      t,
    );
    out.push({
      key: v.key,
      present: a.present,
      missing: a.missing,
      ...(a.partialAtMs !== undefined && { partialAtMs: a.partialAtMs }),
      stale: a.stale,
    });
  }
  return out;
}

/**
 * Run the volume plugins that still owe this version a success; the outcomes for `finishVolumes`.
 * With a landing root per host its members are gathered first; a member that cannot be fetched
 * fails each due plugin (an attempt, retried with backoff), as its own failure would.
 */
async function runVolumePlugins(
  run: VolumeRun,
  claimed: VolumeRecord,
  runs: readonly VolumeRunRecord[],
): Promise<VolumeResult> {
  const { vl, deps, log } = run;
  const rules = run.spec.rules;
  const now = deps.now ?? Date.now;
  let v = claimed;
  let gatherFailure: RunOutcome | undefined;
  if (deps.gatherVolume) {
    const startedMs = now();
    try {
      v = await deps.gatherVolume(run.src.name, claimed, run.signal);
    } catch (thrown) {
      const err = coerceError(thrown);
      gatherFailure = {
        plugin: '',
        ok: false,
        permanent: false,
        errorCode: 'POLLER_VOLUME_GATHER_FAILED',
        message: `gathering the members of volume ${claimed.key} here failed: ${err.message}`,
        durationMs: now() - startedMs,
        outputs: [],
      };
      log.warn(
        { event: 'volume.gather_failed', volume: claimed.key, err: { code: errorCode(err), message: err.message } },
        gatherFailure.message,
      );
    }
  }
  const previous = new Map(runs.map((r) => [r.plugin, r]));
  const outcomes: PluginOutcome[] = [];
  for (const p of deps.runner.volumePluginsFor(pluginVolume(v, rules, 1))) {
    const plan = planRun(p.name, previous.get(p.name), p.maxAttempts, now());
    if (plan === 'skip') continue;
    if (plan !== 'run') {
      outcomes.push(plan);
      continue;
    }
    const [attempt = 1] = await vl.markVolumeRunning([{ volumeId: v.id, plugin: p.name }], now());
    const out = gatherFailure
      ? { ...gatherFailure, plugin: p.name }
      : await deps.runner.runVolume(p, pluginVolume(v, rules, attempt));
    outcomes.push(
      outcomeOf(p.name, out, attempt, p.maxAttempts, now(), { baseMs: deps.retryBaseMs, maxMs: deps.retryMaxMs }),
    );
    if (!out.ok) log.debug({ event: 'volume.plugin_failed', volume: v.key, plugin: p.name }, 'volume plugin failed');
  }
  const configured = deps.runner.plugins.filter((p) => p.kind === 'volume').map((p) => p.name);
  return { id: v.id, outcomes, configured };
}
