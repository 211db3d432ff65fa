/** `poller status`, `poller files`, `poller why`: read-only answers from the ledger. */
import type { CommandModule } from 'yargs';
import type { Config } from '../config/load.js';
import { productsFromLedger } from '../lateness/watch.js';
import {
  FILE_STATES,
  type FileRecord,
  type FileState,
  hasInstanceRegistry,
  hasSharedListing,
  type Ledger,
  type PluginRunRecord,
} from '../ledger/ledger.js';
import type { InstanceRecord } from '../ledger/records.js';
import { formatVersion } from '../ledger/version.js';
import { formatDurationMs } from '../util/duration.js';
import { GlobFilter } from '../util/glob.js';
import { withCommandApp } from './app.js';
import { sizeText } from './ledger.js';
import { type CommonArgs, commonOptions } from './options.js';
import { ago, iso, printJson, printLine, printTable } from './output.js';
import { printVolume, type VolumeView, volumeViews } from './volumes.js';

async function withLedger<T>(args: CommonArgs, fn: (ledger: Ledger, config: Config) => Promise<T>): Promise<T> {
  return withCommandApp(args, { needSecrets: false, ledgerMode: 'read' }, (app) => fn(app.ledger, app.config));
}

export const statusCommand: CommandModule<object, CommonArgs> = {
  command: 'status',
  describe: 'Per source: last poll, last error, files by state, age of the newest file fetched',
  builder: (y) => commonOptions(y) as never,
  handler: async (args) => {
    await withLedger(args, async (ledger, config) => {
      const rows = await ledger.status();
      const instances = hasInstanceRegistry(ledger) ? await ledger.instances() : undefined;
      const listers = hasSharedListing(ledger) ? await ledger.listers() : [];
      const listerOf = (source: string) => {
        const l = listers.find((x) => x.source === source);
        if (!l || l.leaseUntilMs < Date.now()) return null;
        return { instance: instances?.find((i) => i.owner === l.owner)?.id ?? l.owner, epoch: l.epoch };
      };
      const configured = config.sources.map((s) => s.name);
      const byName = new Map(rows.map((r) => [r.name, r]));
      const all = [...new Set([...configured, ...rows.map((r) => r.name)])];
      const report = all.map((name) => {
        const r = byName.get(name);
        return {
          name,
          configured: configured.includes(name),
          url: config.sources.find((s) => s.name === name)?.displayUrl ?? r?.displayUrl ?? null,
          lastPollMs: r?.lastPollMs ?? null,
          lastSuccessMs: r?.lastSuccessMs ?? null,
          lastError: r?.lastError ?? null,
          counts: r?.counts ?? {},
          newestFetchedMtimeMs: r?.newestFetchedMtimeMs ?? null,
          ...(instances && { lister: listerOf(name) }),
        };
      });
      const products = await productsFromLedger(ledger, config.sources, Date.now());
      const productsOf = (name: string) =>
        products
          .filter((p) => p.source === name)
          .map((p) => ({
            product: p.product,
            state: p.state,
            newestMtimeMs: p.newestMtimeMs,
            everyMs: p.everyMs,
            graceMs: p.graceMs,
          }));
      const sinks = config.events ? await ledger.outboxStats() : [];
      const size = await ledger.stats();
      const volumeCounts = (await ledger.volumes?.volumeCounts()) ?? [];
      const volumesOf = (name: string) =>
        Object.fromEntries(volumeCounts.filter((c) => c.source === name).map((c) => [c.state, c.count]));
      if (args.json)
        return printJson({
          sources: report.map((s) => ({
            ...s,
            ...(volumeCounts.some((c) => c.source === s.name) && { volumes: volumesOf(s.name) }),
            ...(products.some((p) => p.source === s.name) && { products: productsOf(s.name) }),
          })),
          ledger: size,
          ...(config.events && { sinks }),
          ...(instances && {
            instances: instances.map((i) => ({ ...i, alive: Date.now() - i.heartbeatMs <= config.leaseTimeMs })),
          }),
        });
      printStatusText({ report, sinks, instances, size, config, volumesOf, productsOf });
    });
  },
};

/** One source in `poller status`. */
interface StatusRow {
  name: string;
  configured: boolean;
  url: string | null;
  lastPollMs: number | null;
  lastSuccessMs: number | null;
  lastError: string | null;
  counts: Partial<Record<FileState, number>>;
  newestFetchedMtimeMs: number | null;
  lister?: { instance: string; epoch: number } | null;
}

/** One expected product of a source in `poller status`. */
interface ProductRow {
  product: string;
  state: string;
  newestMtimeMs: number | null;
  everyMs: number;
  graceMs: number;
}

/** `poller status` as text: a block per source, then sinks, instances and the ledger size. */
function printStatusText(v: {
  report: readonly StatusRow[];
  sinks: Awaited<ReturnType<Ledger['outboxStats']>>;
  instances: readonly InstanceRecord[] | undefined;
  size: Awaited<ReturnType<Ledger['stats']>>;
  config: Config;
  volumesOf: (name: string) => Record<string, number>;
  productsOf: (name: string) => readonly ProductRow[];
}): void {
  const { report, sinks, instances, size, config, volumesOf, productsOf } = v;
  for (const s of report) {
    printLine(`${s.name}${s.configured ? '' : ' (not in config)'}  ${s.url ?? ''}`);
    printLine(
      `  last poll ${ago(s.lastPollMs)}, last success ${ago(s.lastSuccessMs)}${s.lastError ? `, last error: ${s.lastError}` : ''}`,
    );
    const counts = FILE_STATES.filter((st) => s.counts[st]).map((st) => `${st} ${s.counts[st]}`);
    printLine(`  files: ${counts.join(', ') || 'none'}`);
    const vols = Object.entries(volumesOf(s.name));
    if (vols.length > 0) printLine(`  volumes: ${vols.map(([st, n]) => `${st} ${n}`).join(', ')}`);
    printLine(
      `  newest file fetched: ${s.newestFetchedMtimeMs === null ? 'none' : `modified ${ago(s.newestFetchedMtimeMs)}`}`,
    );
    for (const p of productsOf(s.name))
      printLine(
        `  product ${p.product}: ${p.state}, newest ${p.newestMtimeMs === null ? 'none' : `modified ${ago(p.newestMtimeMs)}`}, expected every ${formatDurationMs(p.everyMs)}${p.graceMs ? ` + ${formatDurationMs(p.graceMs)}` : ''}`,
      );
    if ('lister' in s)
      printLine(`  listed by: ${s.lister ? `${s.lister.instance} (lease epoch ${s.lister.epoch})` : 'nobody now'}`);
  }
  for (const k of sinks) {
    const type = config.events?.sinks.find((c) => c.name === k.sink)?.type ?? 'not in config';
    printLine(
      `sink ${k.sink} (${type})  backlog ${k.pending} event(s)${k.oldestPendingMs === null ? '' : `, oldest written ${ago(k.oldestPendingMs)}`}`,
    );
  }
  for (const i of instances ?? []) {
    const late =
      Date.now() - i.heartbeatMs > config.leaseTimeMs
        ? ' (silent past the lease: its claims go at the next sweep)'
        : '';
    printLine(
      `instance ${i.id}  pid ${i.pid} on ${i.host}, heartbeat ${ago(i.heartbeatMs)}${late}, fetching ${i.fetching}, processing ${i.processing}`,
    );
  }
  printLine(`ledger: ${size.fileRows} file version(s), ${size.pluginRunRows} plugin run(s)${sizeText(size.bytes)}`);
}

interface FilesArgs extends CommonArgs {
  state?: FileState;
  source?: string;
  path?: string;
  limit: number;
}

export const filesCommand: CommandModule<object, FilesArgs> = {
  command: 'files',
  describe: 'List file versions in the ledger, newest first',
  builder: (y) =>
    commonOptions(y)
      .option('state', { type: 'string', choices: FILE_STATES as string[] })
      .option('source', { type: 'string' })
      .option('path', { type: 'string', describe: 'Exact path or substring' })
      .option('limit', { type: 'number', default: 50 }) as never,
  handler: async (args) => {
    await withLedger(args, async (ledger) => {
      const files = await ledger.files({
        ...(args.state && { state: args.state }),
        ...(args.source && { source: args.source }),
        ...(args.path && { path: args.path }),
        limit: args.limit,
      });
      if (args.json) return printJson({ files });
      printTable(
        ['id', 'source', 'state', 'version', 'path', 'error'],
        files.map((f) => [f.id, f.source, f.state, formatVersion(f), f.path, f.lastError ?? '']),
      );
    });
  },
};

interface WhyArgs extends CommonArgs {
  path: string;
  source?: string;
}

export interface WhyAnswer {
  source: string;
  path: string;
  verdict: string;
  versions: Array<FileRecord & { plugins: PluginRunRecord[] }>;
  /** The radar volumes this path is (or was) a member of, newest version first. */
  volumes?: VolumeView[];
}

/** Explain, in words, what happened to a remote path in each source that could have it. */
export async function explainPath(
  ledger: Ledger,
  config: Config,
  remotePath: string,
  sourceName?: string,
): Promise<WhyAnswer[]> {
  const p = remotePath.replace(/^\/+/, '');
  const sources = config.sources.filter((s) => !sourceName || s.name === sourceName);
  const answers: WhyAnswer[] = [];
  for (const src of sources) {
    const history = await ledger.history(src.name, p);
    const runs = await ledger.pluginRuns(history.map((f) => f.id));
    const versions = history.map((f) => ({ ...f, plugins: runs.get(f.id) ?? [] }));
    let verdict: string;
    const latest = versions[0];
    if (!latest) {
      const filter = new GlobFilter(src.include, src.exclude);
      if (filter.isExcluded(p))
        verdict = `excluded: an exclude glob of ${src.name} (${src.exclude.join(', ')}) matches it`;
      else if (!filter.matches(p))
        verdict = `not wanted: no include glob of ${src.name} (${src.include.join(', ')}) matches it`;
      else
        verdict = `never seen in a listing of ${src.name}: not on the server yet, or older than maxAge${src.maxAgeMs ? ` (${formatDurationMs(src.maxAgeMs)})` : ''}`;
    } else {
      verdict = describe(latest, latest.plugins, src.stableListings, src.minAgeMs);
    }
    const volumes = src.volumes && ledger.volumes ? await ledger.volumes.volumesOfPath(src.name, p) : [];
    answers.push({
      source: src.name,
      path: p,
      verdict,
      versions,
      ...(volumes.length > 0 && { volumes: await volumeViews(ledger, config, volumes) }),
    });
  }
  return answers;
}

/** A volume key instead of a path: every version of that volume, in each source with volumes. */
export async function explainVolumeKey(
  ledger: Ledger,
  config: Config,
  key: string,
  sourceName?: string,
): Promise<VolumeView[]> {
  if (!ledger.volumes) return [];
  const found = await ledger.volumes.volumes({ key, ...(sourceName && { source: sourceName }), limit: 20 });
  return volumeViews(ledger, config, found);
}

function describe(f: FileRecord, runs: PluginRunRecord[], stableListings: number, minAgeMs: number): string {
  const failedRuns = runs.filter((r) => r.state === 'failed' || r.state === 'quarantined');
  const pluginText = failedRuns
    .map((r) => `${r.plugin} (${r.state} after ${r.attempts} attempt(s): ${r.lastError ?? ''})`)
    .join('; ');
  switch (f.state) {
    case 'seen': {
      const age = Date.now() - f.mtimeMs;
      if (age < minAgeMs)
        return `too young: modified ${formatDurationMs(age)} ago, minAge is ${formatDurationMs(minAgeMs)}`;
      return `settling: seen unchanged in ${f.sightings} of ${stableListings} listings needed`;
    }
    case 'fetching':
      return `being fetched now by ${f.claimedBy ?? 'another process'} (lease until ${iso(f.leaseUntilMs)})`;
    case 'fetched':
      return `fetched to ${f.localPath}${onInstance(f)}; plugins not yet run`;
    case 'processing':
      return `fetched to ${f.localPath}${onInstance(f)}; plugins running now`;
    case 'processed':
      return `already have it: fetched ${iso(f.fetchedMs)} to ${f.localPath}${onInstance(f)}, every plugin succeeded${runs.length ? ` (${runs.map((r) => r.plugin).join(', ')})` : ''}`;
    case 'failed':
      return f.stage === 'fetch'
        ? `fetch failed ${f.fetchAttempts} time(s): ${f.lastError}; next try ${ago(f.nextRetryMs)}`
        : `failed in plugin ${pluginText}; next try ${ago(f.nextRetryMs)}`;
    case 'quarantined':
      return f.stage === 'fetch'
        ? `quarantined after ${f.fetchAttempts} failed fetch(es): ${f.lastError}; \`poller retry --quarantined\` tries again`
        : `quarantined in plugin ${pluginText}; \`poller retry --quarantined\` tries again`;
    case 'rejected':
      return `rejected: ${f.lastError}; it is never fetched`;
    case 'superseded':
      return `superseded: fetched ${iso(f.fetchedMs)}, but ${f.lastError}`;
    case 'gone':
      return `${f.goneBy ? `deleted upstream by ${f.goneBy} at ${iso(f.goneMs ?? null)}` : `removed upstream: missing from the complete listings since ${iso(f.goneMs ?? null)}`}${f.localPath ? `; landed copy ${f.localPath}` : ''}`;
  }
}

/** The text `poller why` prints (and the status page shows for a failure). */
export function whyLines(answers: readonly WhyAnswer[]): string[] {
  const lines: string[] = [];
  for (const a of answers) {
    lines.push(`${a.source}:${a.path}: ${a.verdict}`);
    for (const v of a.versions.slice(0, 5)) {
      lines.push(
        `  version ${formatVersion(v)}: ${v.state}, first seen ${iso(v.firstSeenMs)}${v.fetchedMs ? `, fetched ${iso(v.fetchedMs)}` : ''}${v.goneMs ? `, gone ${iso(v.goneMs)}` : ''}`,
      );
      for (const r of v.plugins) {
        lines.push(
          `    plugin ${r.plugin}: ${r.state}, ${r.attempts} attempt(s)${r.lastError ? `, ${r.lastError}` : ''}`,
        );
      }
    }
    for (const v of a.volumes ?? []) {
      const late = !v.members.some((m) => m.path === a.path) ? ' (arrived after it was handed on: not a member)' : '';
      lines.push(`  in volume ${v.key} version ${v.version}${late}: ${v.verdict}`);
    }
  }
  return lines;
}

export const whyCommand: CommandModule<object, WhyArgs> = {
  command: 'why <path>',
  describe: 'Explain what happened to a remote file: fetched, skipped (and why), or failed where',
  builder: (y) =>
    commonOptions(y)
      .positional('path', { type: 'string', demandOption: true, describe: 'Path relative to the source root' })
      .option('source', { type: 'string' }) as never,
  handler: async (args) => {
    await withLedger(args, async (ledger, config) => {
      const answers = await explainPath(ledger, config, args.path, args.source);
      // Not a file any source has seen, but a volume key: explain the volume.
      if (answers.every((a) => a.versions.length === 0)) {
        const volumes = await explainVolumeKey(ledger, config, args.path, args.source);
        if (volumes.length > 0) {
          if (args.json) return printJson({ volumes });
          for (const v of volumes) printVolume(v);
          return;
        }
      }
      if (args.json) return printJson({ answers });
      for (const line of whyLines(answers)) printLine(line);
    });
  },
};

/** A landing root per host: which instance's landing holds the file. */
function onInstance(f: { readonly landedOn?: string }): string {
  return f.landedOn === undefined ? '' : ` on instance ${f.landedOn}`;
}
