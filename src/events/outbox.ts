/**
 * The events side of a process: outbox routes from the config, one dispatcher per sink, the
 * backlog for health and `poller status`, and the pruning of sent rows after the retention.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import type { EventOutbox, OutboxRoute } from '../ledger/ledger.js';
import { Dispatcher, type DispatcherStats } from './dispatcher.js';
import { openSink } from './sinks/index.js';
import { VolumeArchives } from './volume-archive.js';
import { assertWis2Config } from './wis2-config.js';
import { isWnmDataSink } from './wnm-links.js';

export function outboxRoutes(config: Config): OutboxRoute[] {
  return (config.events?.sinks ?? []).map((s) => ({ sink: s.name, kinds: s.kinds, sources: s.sources }));
}

/** Landed files need a SHA-512 when some sink announces them (WNM `integrity`). */
export function wantsIntegrity(config: Config): boolean {
  return (config.events?.sinks ?? []).some((s) => s.kinds.includes('fetched'));
}

/** `metadata_id` is the operator's (a WCMP2 record): poller never makes one up, and says once when it is missing. */
function warnMissingMetadataIds(config: Config, log: Logger): void {
  const announced = new Set<string>();
  for (const sink of config.events?.sinks ?? [])
    if (isWnmDataSink(sink))
      for (const s of config.sources) if (!sink.sources || sink.sources.includes(s.name)) announced.add(s.name);
  for (const s of config.sources)
    if (announced.has(s.name) && s.wnm?.metadataId === undefined)
      log.warn(
        { event: 'wnm.no_metadata_id', source: s.name },
        `source "${s.name}": WIS2 notifications go out without metadata_id; set wnm.metadataId to the dataset's WCMP2 record id (Global Brokers expect one)`,
      );
}

export interface SinkLag {
  readonly sink: string;
  readonly pending: number;
  readonly oldestPendingAgeMs: number;
}

export interface EventsHub {
  readonly dispatchers: readonly Dispatcher[];
  start(): void;
  /** Wake every dispatcher: new rows were committed. */
  kick(): void;
  /** Send what can be sent before `deadlineMs`; returns the rows left per sink. */
  drain(deadlineMs: number): Promise<Map<string, number>>;
  /** Sinks whose oldest pending event is older than their `lagAlert`. */
  lagging(nowMs: number): SinkLag[];
  stats(): DispatcherStats[];
  prune(nowMs: number): Promise<number>;
  /** Stop every dispatcher; with `drainUntilMs`, each first sends what it can until then. */
  stop(drainUntilMs?: number): Promise<void>;
}

export interface EventsHubOptions {
  onPublished?: (sink: string, n: number) => void;
  onFailed?: (sink: string) => void;
}

export async function openEventsHub(
  config: Config,
  ledger: EventOutbox,
  log: Logger,
  opts: EventsHubOptions = {},
): Promise<EventsHub | undefined> {
  const events = config.events;
  if (!events) return undefined;
  const wis2 = assertWis2Config(config);
  if (wis2.notice) log.info({ event: 'wis2.topics_partly_checked' }, wis2.notice);
  const sources = new Map(config.sources.map((s) => [s.name, s]));
  warnMissingMetadataIds(config, log);
  const volumes = new VolumeArchives(config.landing);
  const dispatchers: Dispatcher[] = [];
  for (const sink of events.sinks) {
    dispatchers.push(
      new Dispatcher({
        name: sink.name,
        sink: await openSink(sink),
        ledger,
        format: { centreId: events.centreId, sink, sources, volumes },
        log: log.child({ sink: sink.name }),
        batch: sink.batch,
        inFlight: sink.inFlight,
        onPublished: (n) => opts.onPublished?.(sink.name, n),
        onFailed: () => opts.onFailed?.(sink.name),
      }),
    );
  }
  const lagAlert = new Map(events.sinks.map((s) => [s.name, s.lagAlertMs]));
  return {
    dispatchers,
    start: () => {
      for (const d of dispatchers) d.start();
    },
    kick: () => {
      for (const d of dispatchers) d.kick();
    },
    async drain(deadlineMs) {
      const left = await Promise.all(dispatchers.map((d) => d.drain(deadlineMs)));
      return new Map(dispatchers.map((d, i) => [d.stats.sink, left[i] ?? 0]));
    },
    lagging(nowMs) {
      const out: SinkLag[] = [];
      for (const d of dispatchers) {
        const oldest = d.stats.oldestPendingMs;
        if (oldest === null) continue;
        const age = nowMs - oldest;
        if (age > (lagAlert.get(d.stats.sink) ?? 60_000))
          out.push({ sink: d.stats.sink, pending: d.stats.pending, oldestPendingAgeMs: age });
      }
      return out;
    },
    stats: () => dispatchers.map((d) => d.stats),
    prune: (nowMs) => ledger.pruneSentEvents(nowMs - events.retentionMs),
    async stop(drainUntilMs) {
      await Promise.all(dispatchers.map((d) => d.stop(drainUntilMs)));
    },
  };
}
