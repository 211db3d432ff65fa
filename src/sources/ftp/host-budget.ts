/**
 * A per-host connection budget shared by every source that points at one host:port. Servers
 * limit connections per client address, not per poller source: two sources on one server must
 * not together open more than the server allows.
 */

/** One source's membership in a host's budget. */
export interface HostLease {
  /** Waits for a connection slot; resolves with the function that gives it back (idempotent). */
  acquire(signal: AbortSignal): Promise<() => void>;
  /** The server said "too many connections": cap the host at `limit` until `untilMs`. */
  throttle(limit: number, untilMs: number): void;
  /** True when other connections wait for a slot of this host: an idle connection should make room. */
  contended(): boolean;
  /** Leave the budget (the source closed). */
  leave(): void;
}

/** Registry of per-host budgets; create one per process in the composition root and pass it to every FTP source. */
export interface HostBudget {
  /**
   * Joins the budget of `key` (`host:port`) with this source's `maxConnections`. The host's limit is
   * the smallest one any joined source declared. `reclaim` closes one idle connection of this
   * source and returns true, so another source waiting for a slot gets one.
   */
  join(key: string, maxConnections: number, reclaim: () => boolean): HostLease;
  /** Slots in use for `key` (for tests and metrics). */
  inUse(key: string): number;
  /**
   * Most slots in use at once for `key` since the first join. Servers see a closed connection go
   * a moment later than we do, so their own count can briefly be higher; a 421 then is throttling.
   */
  peakInUse(key: string): number;
}

interface Member {
  maxConnections: number;
  reclaim: () => boolean;
}

interface Waiter {
  resolve: () => void;
}

interface HostState {
  members: Set<Member>;
  inUse: number;
  peak: number;
  throttledLimit: number;
  throttledUntilMs: number;
  waiters: Waiter[];
  wakeTimer: NodeJS.Timeout | undefined;
}

function limitOf(state: HostState): number {
  let limit = Number.POSITIVE_INFINITY;
  for (const member of state.members) limit = Math.min(limit, member.maxConnections);
  if (Date.now() < state.throttledUntilMs) limit = Math.min(limit, state.throttledLimit);
  return Math.max(1, limit);
}

/** Wakes waiters while the host has free slots. */
function pump(state: HostState): void {
  while (state.waiters.length > 0 && state.inUse < limitOf(state)) {
    state.waiters.shift()?.resolve();
  }
}

/** Waits until a slot may be free (a release, a throttle window ending), or the signal aborts. */
function waitForSlot(host: HostState, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const waiter: Waiter = {
      resolve: () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
    };
    const onAbort = (): void => {
      host.waiters = host.waiters.filter((w) => w !== waiter);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    host.waiters.push(waiter);
  });
}

/** Asks each member of the host to close one idle connection, until one did. */
function reclaimOne(host: HostState): boolean {
  for (const other of host.members) if (other.reclaim()) return true;
  return false;
}

function newHostState(): HostState {
  return {
    members: new Set(),
    inUse: 0,
    peak: 0,
    throttledLimit: Number.POSITIVE_INFINITY,
    throttledUntilMs: 0,
    waiters: [],
    wakeTimer: undefined,
  };
}

/** One member's lease on a host; `forget` drops the host's state once nobody uses it. */
function createLease(host: HostState, member: Member, forget: () => void): HostLease {
  const take = (): (() => void) => {
    host.inUse++;
    host.peak = Math.max(host.peak, host.inUse);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      host.inUse--;
      if (host.members.size === 0 && host.inUse === 0) forget();
      else pump(host);
    };
  };
  return {
    async acquire(signal) {
      // Bounded: each round either takes a slot, frees one by closing an idle connection, or waits for a release.
      for (;;) {
        signal.throwIfAborted();
        if (host.inUse < limitOf(host)) return take();
        if (reclaimOne(host) && host.inUse < limitOf(host)) return take();
        await waitForSlot(host, signal);
      }
    },
    throttle(limit, untilMs) {
      host.throttledLimit = Math.max(1, limit);
      host.throttledUntilMs = untilMs;
      if (host.wakeTimer !== undefined) clearTimeout(host.wakeTimer);
      host.wakeTimer = setTimeout(() => pump(host), Math.max(0, untilMs - Date.now()) + 1);
      host.wakeTimer.unref();
    },
    contended() {
      return host.waiters.length > 0;
    },
    leave() {
      host.members.delete(member);
      if (host.members.size === 0 && host.inUse === 0) forget();
      else pump(host);
    },
  };
}

/** A fresh, empty budget registry. */
export function createHostBudget(): HostBudget {
  const hosts = new Map<string, HostState>();
  const forget = (key: string, state: HostState): void => {
    if (state.wakeTimer !== undefined) clearTimeout(state.wakeTimer);
    // A source that joined meanwhile got this state too: keep it for them.
    if (hosts.get(key) === state && state.members.size === 0) hosts.delete(key);
  };
  return {
    join(key, maxConnections, reclaim) {
      let host = hosts.get(key);
      if (host === undefined) {
        host = newHostState();
        hosts.set(key, host);
      }
      const state = host;
      const member: Member = { maxConnections, reclaim };
      state.members.add(member);
      return createLease(state, member, () => forget(key, state));
    },
    inUse(key) {
      return hosts.get(key)?.inUse ?? 0;
    },
    peakInUse(key) {
      return hosts.get(key)?.peak ?? 0;
    },
  };
}
