/**
 * A poller sharing its ledger with other hosts (PostgreSQL) beats every third of the lease and
 * sweeps: claims of instances silent for longer than the lease go back to due, so a host that
 * died (kill -9, power, network) has its files fetched or processed by another within about
 * `leaseTime` plus one beat. One beat at a time; a failed one is logged and the next tries again.
 */
import type { Logger } from 'pino';
import type { InstanceRegistry } from '../ledger/ledger.js';

export interface HeartbeatOptions {
  registry: InstanceRegistry;
  instance: { id: string; owner: string; host: string; pid: number };
  leaseMs: number;
  log: Logger;
  now?: () => number;
}

export async function startInstanceHeartbeat(o: HeartbeatOptions): Promise<{ stop(): Promise<void> }> {
  const now = o.now ?? Date.now;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const beat = async () => {
    await o.registry.heartbeat(o.instance, now(), o.leaseMs);
    const r = await o.registry.sweepDead(now(), o.leaseMs);
    if (r.dead.length > 0)
      o.log.warn(
        {
          event: 'instance.swept',
          dead: r.dead,
          fetches: r.fetches,
          processing: r.processing,
          volumes: r.volumes ?? 0,
        },
        `took back the claims of stopped instance(s) ${r.dead.join(', ')}`,
      );
    if (r.refetch)
      o.log.warn(
        { event: 'landing.refetch_orphaned', files: r.refetch },
        `${r.refetch} landed file(s) of stopped instance(s) not yet processed: due for fetching again here or on another instance`,
      );
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        running = beat()
          .catch((err: unknown) => o.log.warn({ err, event: 'instance.heartbeat_failed' }, 'heartbeat failed'))
          .finally(() => {
            running = undefined;
            schedule();
          });
      },
      Math.max(100, Math.floor(o.leaseMs / 3)),
    );
    timer.unref();
  };
  // The first beat is awaited: the instance is visible before it claims anything.
  await beat();
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await o.registry.leave(o.instance.id).catch(() => undefined);
    },
  };
}
