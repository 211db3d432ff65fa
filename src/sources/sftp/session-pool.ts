/**
 * A small pool of connections of any kind, bounded by `max`. Broken connections are dropped
 * when released (or when they break while idle) and replaced on demand; idle ones are closed
 * after `idleCloseMs` so a source polled every few minutes does not pin server sessions.
 */

/** What the pool needs to know about one pooled connection. */
export interface PoolMember {
  /** False once the connection broke or was closed; the pool then discards it. */
  isAlive(): boolean;
  /** Closes the connection; must not throw. */
  destroy(): void;
  /** Lets the pool learn that an idle connection died, so it is not handed out. */
  onDeath(listener: () => void): void;
}

/** Settings of a `SessionPool`. */
export interface SessionPoolOptions<T extends PoolMember> {
  max: number;
  /** Opens a new connection; rejects with an already classified error. */
  open(signal: AbortSignal): Promise<T>;
  idleCloseMs: number;
}

interface Waiter<T> {
  resolve(member: T): void;
  reject(err: unknown): void;
  signal: AbortSignal;
  onAbort(): void;
}

/** Bounded pool with abortable acquire; at most `max` members exist at once (idle, busy or opening). */
export class SessionPool<T extends PoolMember> {
  readonly #options: SessionPoolOptions<T>;
  readonly #idle: { member: T; timer: NodeJS.Timeout }[] = [];
  readonly #waiters: Waiter<T>[] = [];
  readonly #all = new Set<T>();
  #opening = 0;
  #closed = false;
  /** Aborts connection attempts in progress when the pool closes. */
  readonly #closeController = new AbortController();

  constructor(options: SessionPoolOptions<T>) {
    this.#options = { ...options, max: Math.max(1, Math.floor(options.max)) };
  }

  /** Members that exist now (idle, busy or being opened). */
  get size(): number {
    return this.#all.size + this.#opening;
  }

  /** Gets an idle member or opens a new one; waits in line when `max` are busy. */
  acquire(signal: AbortSignal): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('pool closed'));
    if (signal.aborted) return Promise.reject(signal.reason);
    const idle = this.#takeIdle();
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.size < this.#options.max) return this.#openFor(signal);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Gives a member back; a dead one is discarded and its slot goes to the next waiter. */
  release(member: T): void {
    if (!this.#all.has(member)) return;
    if (this.#closed || !member.isAlive()) {
      this.#discard(member);
      this.#pump();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(member);
      return;
    }
    const timer = setTimeout(() => {
      const i = this.#idle.findIndex((e) => e.member === member);
      if (i >= 0) this.#idle.splice(i, 1);
      this.#discard(member);
    }, this.#options.idleCloseMs);
    timer.unref();
    this.#idle.push({ member, timer });
  }

  /** Closes every member and rejects waiters. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeController.abort(new Error('pool closed'));
    for (const w of this.#waiters.splice(0)) {
      w.signal.removeEventListener('abort', w.onAbort);
      w.reject(new Error('pool closed'));
    }
    for (const e of this.#idle.splice(0)) clearTimeout(e.timer);
    for (const m of [...this.#all]) this.#discard(m);
  }

  #takeIdle(): T | undefined {
    // Newest first: the most recently used connection is the least likely to have been dropped.
    while (this.#idle.length > 0) {
      const e = this.#idle.pop()!;
      clearTimeout(e.timer);
      if (e.member.isAlive()) return e.member;
      this.#discard(e.member);
    }
    return undefined;
  }

  #discard(member: T): void {
    if (!this.#all.delete(member)) return;
    const i = this.#idle.findIndex((e) => e.member === member);
    if (i >= 0) clearTimeout(this.#idle.splice(i, 1)[0]!.timer);
    member.destroy();
  }

  async #openFor(signal: AbortSignal): Promise<T> {
    this.#opening += 1;
    let member: T;
    try {
      member = await this.#options.open(AbortSignal.any([signal, this.#closeController.signal]));
    } catch (err) {
      this.#opening -= 1;
      this.#pump();
      throw err;
    }
    this.#opening -= 1;
    if (this.#closed) {
      member.destroy();
      throw new Error('pool closed');
    }
    this.#all.add(member);
    member.onDeath(() => {
      const i = this.#idle.findIndex((e) => e.member === member);
      if (i >= 0) {
        clearTimeout(this.#idle.splice(i, 1)[0]!.timer);
        this.#discard(member);
        this.#pump();
      }
    });
    return member;
  }

  /** A slot freed up: open a member for the first waiter, if any. */
  #pump(): void {
    if (this.#closed || this.size >= this.#options.max) return;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return;
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    this.#openFor(waiter.signal).then(waiter.resolve, waiter.reject);
  }
}
