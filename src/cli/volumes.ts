/** `poller volumes`: radar volumes in the ledger, and the words `poller why` uses for one. */
import type { CommandModule } from 'yargs';
import type { Config, SourceConfig } from '../config/load.js';
import type { Ledger } from '../ledger/ledger.js';
import { VOLUME_STATES, type VolumeRecord, type VolumeRunRecord, type VolumeState } from '../ledger/volume-ledger.js';
import { formatDurationMs } from '../util/duration.js';
import { assessVolume } from '../volumes/completeness.js';
import { withCommandApp } from './app.js';
import { type CommonArgs, commonOptions } from './options.js';
import { ago, iso, printJson, printLine, printTable, UsageError } from './output.js';

interface VolumesArgs extends CommonArgs {
  state?: VolumeState;
  source?: string;
  key?: string;
  limit: number;
}

export interface VolumeView {
  source: string;
  key: string;
  version: number;
  state: VolumeState;
  partial: boolean;
  present: string[];
  missing: string[];
  firstMemberMs: number;
  lastMemberMs: number;
  /** Collecting: when it is declared partial if nothing more arrives. */
  partialAtMs: number | null;
  stale: boolean;
  verdict: string;
  runs: VolumeRunRecord[];
  members: VolumeRecord['members'];
}

/** A volume in words: what it has, what it lacks, what happens next. */
export function viewVolume(
  v: VolumeRecord,
  src: SourceConfig | undefined,
  runs: VolumeRunRecord[],
  nowMs = Date.now(),
): VolumeView {
  const rules = src?.volumes?.rules;
  const a = assessVolume(
    v.members.map((m) => ({ member: m.member, seenAtMs: m.landedMs })),
    rules ?? { expect: [], minimum: 1, reopenLate: false },
    nowMs,
  );
  const present = a.present as string[];
  const missing = a.missing as string[];
  const failed = runs.filter((r) => r.state === 'failed' || r.state === 'quarantined');
  const runText = failed.map((r) => `${r.plugin} (${r.state} after ${r.attempts} attempt(s): ${r.lastError ?? ''})`);
  let verdict: string;
  switch (v.state) {
    case 'collecting':
      verdict = !rules
        ? 'collecting; its source no longer has volumes: in the config'
        : a.stale
          ? `collecting and stale: ${present.length} member(s), below the minimum of ${rules.minimum}, quiet since ${iso(a.lastMemberAtMs)}`
          : a.partialAtMs !== undefined
            ? `collecting: missing ${missing.join(', ') || 'nothing expected'}; declared partial at ${iso(a.partialAtMs)} (${ago(a.partialAtMs)}) if nothing more arrives`
            : `collecting: missing ${missing.join(', ')}${rules.completeAfterMs === undefined ? '; no completeAfter, so only the last member completes it' : ''}`;
      break;
    case 'complete':
    case 'partial':
      verdict = `${v.state}${v.partial && missing.length ? ` (missing ${missing.join(', ')})` : ''}: volume plugins ${v.claimedBy ? `running now in ${v.claimedBy}` : 'not yet run'}`;
      break;
    case 'processed':
      verdict = `processed ${iso(v.doneMs)}${v.partial ? ` as partial (missing ${missing.join(', ')})` : ''}: every volume plugin succeeded${runs.length ? ` (${runs.map((r) => r.plugin).join(', ')})` : ''}`;
      break;
    case 'failed':
      verdict = `failed in volume plugin ${runText.join('; ')}; next try ${ago(v.nextRetryMs)}`;
      break;
    case 'quarantined':
      verdict = `quarantined in volume plugin ${runText.join('; ')}`;
      break;
    case 'superseded':
      verdict = 'superseded: a member changed before its plugins ran; the next version runs instead';
      break;
  }
  return {
    source: v.source,
    key: v.key,
    version: v.version,
    state: v.state,
    partial: v.partial,
    present,
    missing,
    firstMemberMs: v.firstMemberMs,
    lastMemberMs: v.lastMemberMs,
    partialAtMs: v.state === 'collecting' ? (a.partialAtMs ?? null) : null,
    stale: v.state === 'collecting' && a.stale,
    verdict,
    runs,
    members: v.members,
  };
}

/** Views of volumes, with their runs. */
export async function volumeViews(ledger: Ledger, config: Config, volumes: VolumeRecord[]): Promise<VolumeView[]> {
  const runs = (await ledger.volumes?.volumeRuns(volumes.map((v) => v.id))) ?? new Map<number, VolumeRunRecord[]>();
  return volumes.map((v) =>
    viewVolume(
      v,
      config.sources.find((s) => s.name === v.source),
      runs.get(v.id) ?? [],
    ),
  );
}

export function printVolume(v: VolumeView): void {
  printLine(`${v.source}:${v.key} (version ${v.version}): ${v.verdict}`);
  printLine(
    `  members: ${v.present.join(', ') || 'none'}; first landed ${iso(v.firstMemberMs)}, last ${iso(v.lastMemberMs)} (${formatDurationMs(Math.max(0, v.lastMemberMs - v.firstMemberMs))} apart)`,
  );
  for (const r of v.runs)
    printLine(
      `  volume plugin ${r.plugin}: ${r.state}, ${r.attempts} attempt(s)${r.lastError ? `, ${r.lastError}` : ''}`,
    );
}

export const volumesCommand: CommandModule<object, VolumesArgs> = {
  command: 'volumes',
  describe: 'List radar volumes in the ledger (members, missing ones, state), newest first',
  builder: (y) =>
    commonOptions(y)
      .option('state', { type: 'string', choices: VOLUME_STATES as string[] })
      .option('source', { type: 'string' })
      .option('key', { type: 'string', describe: 'One volume key (every version of it)' })
      .option('limit', { type: 'number', default: 50 }) as never,
  handler: async (args) => {
    await withCommandApp(args, { needSecrets: false, ledgerMode: 'read' }, async (app) => {
      const vl = app.ledger.volumes;
      if (!vl) throw new UsageError('this ledger backend does not record radar volumes');
      const volumes = await vl.volumes({
        ...(args.state && { state: args.state }),
        ...(args.source && { source: args.source }),
        ...(args.key && { key: args.key }),
        limit: args.limit,
      });
      const views = await volumeViews(app.ledger, app.config, volumes);
      if (args.json) return printJson({ volumes: views });
      if (args.key) {
        for (const v of views) printVolume(v);
        if (views.length === 0) printLine(`no volume ${args.key} in the ledger`);
        return;
      }
      printTable(
        ['source', 'key', 'version', 'state', 'members', 'missing', 'last member', 'note'],
        views.map((v) => [
          v.source,
          v.key,
          v.version,
          v.partial && v.state === 'processed' ? 'processed (partial)' : v.state,
          v.present.join(','),
          v.missing.join(','),
          iso(v.lastMemberMs),
          v.stale
            ? 'stale: below the minimum'
            : v.partialAtMs !== null
              ? `partial ${ago(v.partialAtMs)}`
              : v.state === 'failed' || v.state === 'quarantined'
                ? (v.runs.find((r) => r.lastError)?.lastError ?? '')
                : '',
        ]),
      );
    });
  },
};
