/**
 * File versions and their comparison. A version is the (size, mtime) seen when the file
 * settled. Servers report mtimes at different precisions (MLSD: seconds; LIST: minutes, or only
 * the day for files older than six months), so two sightings are the same version when their
 * sizes match and the finer mtime falls inside the coarser one's unit. When both sightings carry a
 * strong ETag (HTTP, S3), the ETag is the key instead of the mtime: a file rewritten with the same
 * size inside one listed minute (or one second) is still a new version.
 */
import type { MtimePrecision } from '../sources/source.js';

const UNIT_MS: Record<MtimePrecision, number> = { ms: 1, s: 1000, minute: 60_000, day: 86_400_000 };
const RANK: Record<MtimePrecision, number> = { ms: 0, s: 1, minute: 2, day: 3 };

export interface VersionKey {
  sizeBytes: number;
  mtimeMs: number;
  mtimePrecision: MtimePrecision;
  /** The server's strong ETag; absent or '' when it gave none. */
  etag?: string | null | undefined;
}

/** True when two sightings describe the same file content as far as the listing can tell. */
export function isSameVersion(a: VersionKey, b: VersionKey): boolean {
  if (a.sizeBytes !== b.sizeBytes) return false;
  if (a.etag && b.etag) return a.etag === b.etag;
  const [coarse, fine] = RANK[a.mtimePrecision] >= RANK[b.mtimePrecision] ? [a, b] : [b, a];
  const unit = UNIT_MS[coarse.mtimePrecision];
  if (coarse.mtimePrecision === fine.mtimePrecision)
    return Math.floor(a.mtimeMs / unit) === Math.floor(b.mtimeMs / unit);
  // The coarse value is the start of its unit (LIST "Nov 22 2025" is that day's midnight in the
  // server's zone, converted to UTC by the parser): the finer time must fall inside it.
  return fine.mtimeMs >= coarse.mtimeMs && fine.mtimeMs < coarse.mtimeMs + unit;
}

/** Short text form for logs and the CLI: `1048576@2026-11-23T10:05:00Z`. */
export function formatVersion(v: VersionKey): string {
  return `${v.sizeBytes}@${new Date(v.mtimeMs).toISOString().replace('.000Z', 'Z')}`;
}
