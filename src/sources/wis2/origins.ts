/**
 * The download origins of a WIS2 source: one HTTP source per origin (scheme, host, port) of the
 * announced links, opened on first use, the least recently used closed past a bound.
 */
import { createHttpSource } from '../http/http-source.js';
import type { Source, SourceConnectOptions } from '../source.js';

/** Download origins with an open connection pool at most. */
const MAX_ORIGINS = 32;

export class DownloadOrigins {
  readonly #opts: SourceConnectOptions;
  readonly #open = new Map<string, Source>();

  constructor(opts: SourceConnectOptions) {
    this.#opts = opts;
  }

  /** The source that fetches `href`, the path to ask it for, and the link's query ('' when none). */
  for(href: string): { source: Source; rel: string; query: string } {
    const url = new URL(href);
    let source = this.#open.get(url.origin);
    if (source) this.#open.delete(url.origin);
    else {
      const opts = this.#opts;
      source = createHttpSource({
        ...opts,
        protocol: url.protocol === 'https:' ? 'https' : 'http',
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80,
        user: '',
        rootPath: '/',
        tls: { mode: 'none', insecure: opts.tls.insecure, ...(opts.tls.ca !== undefined && { ca: opts.tls.ca }) },
      });
      if (this.#open.size >= MAX_ORIGINS) {
        const [lru, old] = this.#open.entries().next().value as [string, Source];
        this.#open.delete(lru);
        void old.close().catch(() => undefined);
      }
    }
    this.#open.set(url.origin, source);
    return { source, rel: decodeURIComponent(url.pathname).replace(/^\/+/, ''), query: url.search };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#open.values()].map((s) => s.close().catch(() => undefined)));
    this.#open.clear();
  }
}
