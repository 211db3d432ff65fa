/**
 * Where a WNM link points, and whether a subscriber can follow it. The standard wants links a
 * subscriber downloads without further action (REQ links C) over HTTP, HTTPS, FTP or SFTP
 * (REQ links D): a `file://` path, an `s3://` bucket or a server that needs poller's own login
 * is none of that. A sink is refused at start unless `publicBaseUrl` (or a source's own
 * anonymous URL) gives such links.
 */
import type { EventsConfig, SinkConfig, SourceConfig } from '../config/load.js';
import type { EventKind } from '../ledger/ledger.js';

/** The event kinds a WNM sink announces with links (the others are CloudEvents). */
export const WNM_DATA_KINDS: ReadonlySet<EventKind> = new Set<EventKind>([
  'fetched',
  'volume-complete',
  'volume-partial',
  // Removed upstream after landing: a WNM with a `deletion` link (payload.ts).
  'gone',
]);

const FETCHABLE = new Set(['http:', 'https:', 'ftp:', 'sftp:']);

export function isWnmDataSink(sink: SinkConfig): boolean {
  return sink.format === 'wnm' && sink.kinds.some((k) => WNM_DATA_KINDS.has(k));
}

/** A public base URL is usable: http(s), ftp or sftp, no credentials, query or fragment. */
export function publicBaseUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  if (!FETCHABLE.has(url.protocol))
    return `scheme "${url.protocol.slice(0, -1)}" is not one a subscriber can fetch; use https (or http, ftp, sftp)`;
  if (url.username !== '' || url.password !== '') return 'it carries credentials; links must be fetchable without them';
  if (url.search !== '' || url.hash !== '') return 'it has a query or fragment; give the base of a directory';
  return undefined;
}

/** A source whose own URL a subscriber can fetch from without poller's credentials. */
function anonymousOrigin(s: SourceConfig): boolean {
  const open = s.password === undefined && s.privateKey === undefined && s.bearerToken === undefined;
  if (s.protocol === 'http' || s.protocol === 'https') return open && s.user === '';
  if (s.protocol === 'ftp') return open && (s.user === '' || s.user === 'anonymous' || s.user === 'ftp');
  return false;
}

/** One line per WNM sink whose links a subscriber could not fetch. */
export function wnmLinkProblems(sources: readonly SourceConfig[], events: EventsConfig): string[] {
  const problems: string[] = [];
  events.sinks.forEach((sink, i) => {
    if (!isWnmDataSink(sink)) return;
    const at = `events.sinks[${i}].publicBaseUrl`;
    if (sink.publicBaseUrl !== undefined) {
      const why = publicBaseUrlProblem(sink.publicBaseUrl);
      if (why) problems.push(`${at}: ${why}`);
      return;
    }
    const covered = sink.sources ? sources.filter((s) => sink.sources?.includes(s.name)) : sources;
    const closed = covered.find((s) => !anonymousOrigin(s));
    if (!closed && sink.kinds.some((k) => k.startsWith('volume-')))
      problems.push(
        `${at}: sink "${sink.name}" announces radar volumes, each an archive written into the landing directory; set publicBaseUrl to the https (or http, ftp, sftp) URL that serves it`,
      );
    else if (closed)
      problems.push(
        `${at}: sink "${sink.name}" would announce links like ${closed.displayUrl.replace(/\/+$/, '')}/<path> (source "${closed.name}") that a subscriber cannot fetch without poller's credentials; set publicBaseUrl to the https (or http, ftp, sftp) URL that serves the landing directory`,
      );
  });
  return problems;
}
