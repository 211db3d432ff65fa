/**
 * The volume stage's ledger decisions, made once for every backend: what an arriving member does
 * to the latest version of its volume (join it, start the first, reopen it as the next version,
 * or only be recorded as late), the assessment a touched version gets, and the event fact of a
 * version. The backends read the rows and write what these decide.
 */
import { assessVolume, type CompletenessRules, lateMemberAction } from '../../volumes/completeness.js';
import { volumeVersion } from '../../volumes/group.js';
import { volumeFact } from '../outbox-routes.js';
import type { EventFact } from '../records.js';
import type { VolumeState } from '../volume-ledger.js';
import type { MemberRow, VolumeRow } from '../volume-rows.js';

/** States a member change supersedes: handed on (or failed) but not being run now. */
export const SUPERSEDABLE_STATES: readonly VolumeState[] = ['complete', 'partial', 'failed'];

/**
 * What an arrival does:
 *   new     no version of its key yet: version 1 starts with it;
 *   join    the latest version is collecting: it joins (or replaces its member);
 *   late    the latest version left collecting and this changes nothing there: recorded, runs stand;
 *   reopen  it left collecting and this changes it: the next version (members carried over), and
 *           the latest is superseded when `supersede` (not being run now).
 */
export type JoinPlan =
  | { readonly kind: 'new' }
  | { readonly kind: 'join' }
  | { readonly kind: 'late' }
  | { readonly kind: 'reopen'; readonly supersede: boolean };

/** The latest version of a key as the planner reads it. */
export type LatestVersion = Pick<VolumeRow, 'state' | 'claimed_by'>;

/** The members of a version, for the late-member rule: member to `path\0version` (a forgotten one never matches). */
export function knownMembers(
  members: readonly Pick<MemberRow, 'member' | 'path' | 'file_version' | 'forgotten'>[],
): Map<string, string> {
  // A member is its path and its file version: a moment re-sent under another name changed too.
  // A forgotten member is never "already there": its file coming back reruns the volume.
  return new Map(members.map((m) => [m.member, m.forgotten ? '\0forgotten' : `${m.path}\0${m.file_version}`]));
}

export function planJoin(
  latest: LatestVersion | undefined,
  known: ReadonlyMap<string, string>,
  arrival: { readonly member: string; readonly path: string; readonly version: string },
  rules: CompletenessRules,
): JoinPlan {
  if (!latest) return { kind: 'new' };
  if (latest.state === 'collecting') return { kind: 'join' };
  const arriving = { member: arrival.member, version: `${arrival.path}\0${arrival.version}` };
  if (lateMemberAction(known, arriving, rules) === 'ignore') return { kind: 'late' };
  return { kind: 'reopen', supersede: SUPERSEDABLE_STATES.includes(latest.state) && latest.claimed_by === null };
}

/** The columns an assessment writes, and whether the version closed (left collecting) with it. */
export interface VolumeAssessment {
  readonly digest: string;
  readonly first: number;
  readonly last: number;
  readonly state: VolumeState;
  readonly partial: number;
  readonly closed: number | null;
  readonly closes: boolean;
}

/** Digest, member times and (for a collecting version) the state; undefined for a version without members. */
export function assessVersion(
  row: Pick<VolumeRow, 'state' | 'partial' | 'closed_ms'>,
  members: readonly Pick<MemberRow, 'member' | 'path' | 'file_version' | 'landed_ms'>[],
  rules: CompletenessRules,
  nowMs: number,
): VolumeAssessment | undefined {
  if (members.length === 0) return undefined;
  const a = assessVolume(
    members.map((m) => ({ member: m.member, seenAtMs: m.landed_ms })),
    rules,
    nowMs,
  );
  const digest = volumeVersion(
    members.map((m) => ({ member: m.member, path: m.path, version: m.file_version, seenAtMs: m.landed_ms })),
  );
  const closes = row.state === 'collecting' && a.state !== 'collecting';
  return {
    digest,
    first: a.firstMemberAtMs,
    last: a.lastMemberAtMs,
    state: closes ? a.state : row.state,
    partial: closes && a.state === 'partial' ? 1 : row.partial,
    closed: closes ? nowMs : row.closed_ms,
    closes,
  };
}

/** The event fact of a volume version from its row and members. */
export function volumeRowFact(row: VolumeRow, members: readonly MemberRow[]): EventFact {
  return volumeFact(
    {
      id: row.id,
      key: row.key,
      version: row.version,
      fields: JSON.parse(row.fields) as Record<string, string>,
      partial: row.partial === 1,
      firstMemberMs: row.first_member_ms,
      lastMemberMs: row.last_member_ms,
    },
    members.map((m) => ({
      member: m.member,
      fileId: m.file_id,
      path: m.path,
      sizeBytes: m.size_bytes,
      mtimeMs: m.mtime_ms,
    })),
  );
}
