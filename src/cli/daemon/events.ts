/**
 * The daemon's event sinks: the hub of the running config, its hourly prune, and its swap when a
 * reload changes `events:`. Its releasers send what the last cycles committed (bounded) and stop.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../../config/load.js';
import { type EventsHub, type EventsHubOptions, openEventsHub, outboxRoutes } from '../../events/outbox.js';
import type { Metrics } from '../../observe/metrics.js';
import type { App } from '../app.js';
import type { Releasers } from '../releasers.js';

/** Sent rows are deleted after the retention, at start and then this often. */
const PRUNE_EVERY_MS = 3_600_000;

export interface DaemonEvents {
  /** The hub of the running config; absent without `events:`. */
  readonly hub: EventsHub | undefined;
  /** Swap the hub when `events:` changed between `previous` and `next`. */
  reload(next: Config, previous: Config): Promise<void>;
}

/**
 * Open and start the hub. At release, what is pending goes out if the broker answers within
 * `drainMs`; the rest waits in the outbox for the next start.
 */
export async function startEvents(
  app: App,
  metrics: Metrics,
  drainMs: number,
  releasers: Releasers,
): Promise<DaemonEvents> {
  const { log } = app;
  const options: EventsHubOptions = {
    onPublished: (sink, n) => metrics.eventsPublished(sink, n),
    onFailed: (sink) => metrics.eventsFailed(sink),
  };
  let hub = await openEventsHub(app.config, app.ledger, log, options);
  hub?.start();
  releasers.add(() => hub?.stop(Date.now() + drainMs));
  const prune = () =>
    void hub
      ?.prune(Date.now())
      .then((n) => n && log.info({ event: 'outbox.pruned', events: n }, `pruned ${n} sent events`))
      .catch((err: unknown) => log.warn({ err }, 'pruning sent events failed'));
  prune();
  const pruneTimer = setInterval(prune, PRUNE_EVERY_MS);
  pruneTimer.unref();
  releasers.add(() => clearInterval(pruneTimer));
  return {
    get hub() {
      return hub;
    },
    /**
     * The old dispatchers finish the batch under way and close before the new ones start (one
     * sender per sink: ids stay in order, none sent twice by two loops), and the ledger writes
     * rows for the new routes from the next transition on. Rows pending for a sink that is gone
     * stay in the outbox, and the log says how many.
     */
    async reload(next, previous) {
      if (isDeepStrictEqual(next.events, previous.events)) return;
      const nextHub = await openEventsHub(next, app.ledger, log, options);
      const kept = new Set((next.events?.sinks ?? []).map((s) => s.name));
      for (const d of hub?.stats() ?? []) {
        if (!kept.has(d.sink) && d.pending > 0)
          log.warn(
            { event: 'events.sink_removed', sink: d.sink, pending: d.pending },
            `sink ${d.sink} was removed with ${d.pending} event(s) unsent; they stay in the outbox and go out if it comes back`,
          );
      }
      app.ledger.setOutbox(outboxRoutes(next));
      await hub?.stop();
      hub = nextHub;
      hub?.start();
      log.info(
        { event: 'events.reloaded', sinks: (next.events?.sinks ?? []).map((s) => s.name) },
        'event sinks reloaded',
      );
    },
  };
}
