/**
 * Resources released in the reverse order they were acquired (graphile-worker's releasers): each
 * resource registers its release as soon as it has started, so every way out (a stop signal, a
 * failed start, a thrown error) runs one `release()` that undoes exactly what was started, once.
 */
import type { Logger } from 'pino';

export type Releaser = () => unknown;

export class Releasers {
  readonly #log: Logger;
  readonly #pending: Releaser[] = [];

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Register how to undo what just started; it runs before everything registered earlier. */
  add(release: Releaser): void {
    this.#pending.push(release);
  }

  /**
   * Run every releaser, last registered first. A release that fails is logged and the rest still
   * run: a stuck sink must not keep the ledger open. Calling it again releases only what was
   * registered since.
   */
  async release(): Promise<void> {
    for (let release = this.#pending.pop(); release; release = this.#pending.pop()) {
      try {
        await release();
      } catch (err) {
        this.#log.warn({ err, event: 'daemon.release_failed' }, 'release failed');
      }
    }
  }
}
