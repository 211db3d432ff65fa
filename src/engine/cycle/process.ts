/**
 * Process: a landed file's plugins run (each that still owes it a success), and every outcome is
 * recorded in one transaction; once it is processed (and committed), the source's `after:` runs.
 * Files this cycle landed are processed as soon as their fetch is committed; files fetched
 * earlier whose processing is due (plugin retries, a crash between fetch and process) after.
 */
import type { Logger } from 'pino';
import type { SourceConfig } from '../../config/load.js';
import type { FileRecord, FileState, PluginOutcome } from '../../ledger/ledger.js';
import { formatVersion } from '../../ledger/version.js';
import type { PluginFile } from '../../plugins/api.js';
import { isAlreadyLanded } from '../../transfer/landing.js';
import { outcomeOf, planRun } from '../plugin-outcome.js';
import { applyAfter } from './after.js';
import { LedgerCommits } from './commits.js';
import { type CycleContext, LEASE_MS } from './context.js';
import type { CycleDeps, CycleEvents, CycleSummary } from './types.js';

/** Files claimed for processing per ledger call, and such calls per cycle. */
const DUE_BATCH = 256;
const MAX_DUE_BATCHES = 100;

/** Processes a file this cycle just landed (its fetch committed): claimed for processing, then run. */
export async function processLanded(ctx: CycleContext, rec: FileRecord): Promise<void> {
  const claimed = await ctx.commits.claimProcess.add(rec.id);
  if (claimed) await processAndAfter(ctx, claimed);
}

/**
 * Processes files whose plugin retries were due when the cycle started (or that a crash left
 * fetched but unprocessed). Due-ness is judged at the cycle's start, so a run that fails during
 * this cycle waits for a later one instead of spinning here.
 */
export async function processDue(ctx: CycleContext): Promise<void> {
  const { src, deps } = ctx;
  for (let batch = 0; batch < MAX_DUE_BATCHES; batch++) {
    const lease = ctx.now() + ctx.claimLeaseMs;
    const recs = await deps.ledger.claimForProcessing(src.name, deps.owner, lease, ctx.startedMs, DUE_BATCH);
    if (recs.length === 0) return;
    const work = Promise.all(recs.map((r) => processAndAfter(ctx, r)));
    // Commit point: every file of the batch handed in its first item; write them now.
    ctx.commits.flush();
    await work;
  }
}

async function processAndAfter(ctx: CycleContext, rec: FileRecord): Promise<void> {
  const state = await processClaimed(rec, ctx);
  if (state === 'processed') await applyAfter(ctx, rec);
}

/** What processing a claimed file needs: a cycle's context has it all; a command builds its own. */
export interface ProcessScope {
  readonly src: Pick<SourceConfig, 'name'>;
  readonly deps: Pick<CycleDeps, 'ledger' | 'runner' | 'owner' | 'retryBaseMs' | 'retryMaxMs' | 'now' | 'events'>;
  readonly summary: Pick<CycleSummary, 'processed' | 'failed'>;
  readonly emit: CycleEvents;
  readonly log: Logger;
  /** The cycle's group commits; absent, every item is written at once, alone (a command processing a few files). */
  readonly commits?: LedgerCommits;
}

/**
 * Run the plugins that still owe this file a success (or only `onlyPlugin`, for `poller retry
 * --plugin`); record every outcome in one transaction.
 */
export async function processClaimed(
  rec: FileRecord,
  scope: ProcessScope,
  onlyPlugin?: string,
): Promise<FileState | 'claim-lost'> {
  const { src, deps, summary, emit, log } = scope;
  const commits = scope.commits ?? new LedgerCommits(deps.ledger, deps.owner, deps.now ?? Date.now, LEASE_MS, true);
  const now = deps.now ?? Date.now;
  if (!(await isAlreadyLanded(rec.localPath as string, rec))) {
    // A newer version of the file landed on the same path before this one's plugins ran.
    if ((await deps.ledger.markSuperseded([rec.id], deps.owner, now())).length > 0) {
      warnClaimLost(log.child({ path: rec.path, version: formatVersion(rec) }), 'mark superseded');
      return 'claim-lost';
    }
    log.info(
      { event: 'file.superseded', path: rec.path, version: formatVersion(rec) },
      'superseded by a newer version',
    );
    return 'superseded';
  }
  const runs = await commits.runs.add(rec.id);
  const previous = new Map(runs.map((r) => [r.plugin, r]));
  const base: Omit<PluginFile, 'attempt'> = {
    localPath: rec.localPath as string,
    remotePath: rec.path,
    source: src.name,
    sizeBytes: rec.sizeBytes,
    mtimeMs: rec.mtimeMs,
  };
  const outcomes: PluginOutcome[] = [];
  const plugins = deps.runner.pluginsFor({ ...base, attempt: 1 });
  for (const [i, p] of plugins.entries()) {
    if (onlyPlugin !== undefined && p.name !== onlyPlugin) continue;
    const plan = planRun(p.name, previous.get(p.name), p.maxAttempts, now());
    if (plan === 'skip') continue;
    if (plan !== 'run') {
      outcomes.push(plan);
      continue;
    }
    const attempt = await commits.running.add({ fileId: rec.id, plugin: p.name });
    const out = await deps.runner.run(p, { ...base, attempt });
    emit.pluginRan?.(p.name, out.ok, out.durationMs);
    outcomes.push(
      outcomeOf(p.name, out, attempt, p.maxAttempts, now(), { baseMs: deps.retryBaseMs, maxMs: deps.retryMaxMs }),
    );
    // Another plugin runs next: this success is recorded first, so a poller (or host) that dies in
    // the next one does not run this one again. The last success is written with the verdict.
    if (out.ok && i < plugins.length - 1)
      await commits.succeeded.add({ fileId: rec.id, plugin: p.name, durationMs: out.durationMs, outputs: out.outputs });
  }
  const state = await commits.finish.add({ id: rec.id, outcomes });
  reportProcessed(rec, state, src.name, summary, emit, log);
  return state;
}

function reportProcessed(
  rec: FileRecord,
  state: FileState | 'claim-lost',
  source: string,
  summary: Pick<CycleSummary, 'processed' | 'failed'>,
  emit: CycleEvents,
  log: Logger,
): void {
  if (state === 'claim-lost') {
    warnClaimLost(log.child({ path: rec.path, version: formatVersion(rec) }), 'finish processing');
    return;
  }
  if (state === 'processed') summary.processed++;
  else summary.failed++;
  emit.processed?.(source, rec.path, state);
  if (state === 'processed') return;
  log.warn(
    {
      event: state === 'quarantined' ? 'file.quarantined' : 'file.process_failed',
      path: rec.path,
      version: formatVersion(rec),
    },
    `plugins failed on ${rec.path}`,
  );
}

/**
 * This process's lease on the file expired and another process took it over; that process
 * finishes the file, so nothing is written here.
 */
export function warnClaimLost(log: Logger, what: string): void {
  log.warn(
    {
      event: 'file.claim_lost',
      err: { code: 'POLLER_LEDGER_CLAIM_LOST', message: `cannot ${what}: the claim was lost` },
    },
    `cannot ${what}: the claim was lost (its lease expired and another process took the file over)`,
  );
}
