/**
 * The leases of one batch's claims, renewed every third of the lease while its transfers run. A
 * claim another process took over (its lease ran out, or a shared ledger's sweep gave it back)
 * stops its transfer: the new owner fetches the file, and this one must not keep downloading
 * it. One controller per claim (no AbortSignal.any per file); the cycle's own signal aborts them
 * all through one listener.
 */
import type { FileRecord } from '../../ledger/ledger.js';
import type { CycleContext } from './context.js';

export class ClaimLeases {
  readonly #ctx: CycleContext;
  /** Claims whose leases are renewed: the batch's, until each transfer ends. */
  readonly #held: Set<number>;
  readonly #aborts = new Map<number, AbortController>();
  readonly #timer: NodeJS.Timeout;
  readonly #abortAll = () => {
    for (const c of this.#aborts.values()) c.abort(this.#ctx.opts.signal.reason);
  };

  constructor(ctx: CycleContext, claimed: readonly FileRecord[]) {
    this.#ctx = ctx;
    this.#held = new Set(claimed.map((c) => c.id));
    ctx.opts.signal.addEventListener('abort', this.#abortAll, { once: true });
    this.#timer = setInterval(() => this.#renew(), ctx.claimLeaseMs / 3);
    this.#timer.unref();
  }

  /** A transfer of claim `id` begins: its signal aborts with the cycle's, or when the claim is taken over. */
  begin(id: number): AbortSignal {
    const abort = new AbortController();
    if (this.#ctx.opts.signal.aborted) abort.abort(this.#ctx.opts.signal.reason);
    this.#aborts.set(id, abort);
    return abort.signal;
  }

  /** The claim's transfer ended (landed, failed or given back): its lease is no longer renewed. */
  end(id: number): void {
    this.#aborts.delete(id);
    this.#held.delete(id);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#ctx.opts.signal.removeEventListener('abort', this.#abortAll);
  }

  #renew(): void {
    if (this.#held.size === 0) return;
    const { deps, log } = this.#ctx;
    deps.ledger
      .renewLeases([...this.#held], deps.owner, this.#ctx.now() + this.#ctx.claimLeaseMs)
      .then((lost) => {
        // Only claims still in flight: a file that finished meanwhile was dropped, not lost.
        const stillHeld = lost.filter((id) => this.#held.has(id));
        if (stillHeld.length === 0) return;
        for (const id of stillHeld) this.#held.delete(id);
        log.warn(
          { event: 'claim.lost', files: stillHeld.length },
          `${stillHeld.length} claim(s) were taken over by another process: their transfers stop; the new owner fetches them`,
        );
        for (const id of stillHeld) this.#aborts.get(id)?.abort(new Error('the claim was taken over'));
      })
      // The ledger unreachable: the lease runs on; if it expires, the commit is refused.
      .catch((err: unknown) => deps.log.warn({ err }, 'lease renewal failed'));
  }
}
