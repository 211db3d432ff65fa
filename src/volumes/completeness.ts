/**
 * Completeness rules: when a collecting volume becomes complete, when it is declared partial after
 * a quiet time, and what a late member does to a volume already handed to plugins. Pure functions
 * of (members, rules, now), so the decision is the same in a daemon, a run-once and `poller why`.
 */

/** The completeness part of a source's `volumes:` config, in milliseconds. */
export interface CompletenessRules {
  /** Members a complete volume has (e.g. DBZH, VRAD, ...). Empty: unknown, the quiet time decides. */
  readonly expect: readonly string[];
  /** Fewest members for a partial volume; below it a quiet volume stays collecting (and stale). */
  readonly minimum: number;
  /** Quiet time after the last member before a volume is declared partial; undefined: never. */
  readonly completeAfterMs?: number | undefined;
  /** A new member after the volume was handed to plugins reopens it as a new version. */
  readonly reopenLate: boolean;
}

export type OpenVolumeState = 'collecting' | 'complete' | 'partial';

export interface Assessment {
  readonly state: OpenVolumeState;
  readonly present: readonly string[];
  /** Expected members not (yet) there. */
  readonly missing: readonly string[];
  readonly firstMemberAtMs: number;
  readonly lastMemberAtMs: number;
  /** When a collecting volume will be declared partial if nothing more arrives; undefined: never. */
  readonly partialAtMs?: number | undefined;
  /** Quiet for the whole quiet time but still below the minimum: nothing will move it on its own. */
  readonly stale: boolean;
}

export interface MemberTime {
  readonly member: string;
  readonly seenAtMs: number;
}

/** Decide the state of an open volume at `nowMs`. `members` must not be empty. */
export function assessVolume(members: readonly MemberTime[], rules: CompletenessRules, nowMs: number): Assessment {
  const present = [...new Set(members.map((m) => m.member))].sort();
  const have = new Set(present);
  const missing = rules.expect.filter((e) => !have.has(e));
  const times = members.map((m) => m.seenAtMs);
  const firstMemberAtMs = Math.min(...times);
  const lastMemberAtMs = Math.max(...times);
  const base = { present, missing, firstMemberAtMs, lastMemberAtMs };
  if (rules.expect.length > 0 && missing.length === 0) return { ...base, state: 'complete', stale: false };
  if (rules.completeAfterMs === undefined) return { ...base, state: 'collecting', stale: false };
  const quietAtMs = lastMemberAtMs + rules.completeAfterMs;
  const quiet = nowMs >= quietAtMs;
  const enough = present.length >= rules.minimum;
  if (!enough) return { ...base, state: 'collecting', stale: quiet };
  if (!quiet) return { ...base, state: 'collecting', partialAtMs: quietAtMs, stale: false };
  // Without an expected list nothing can be missing: a quiet volume with enough members is whole.
  return { ...base, state: rules.expect.length === 0 ? 'complete' : 'partial', stale: false };
}

/** What became of a volume after it left `collecting`. */
export type ClosedVolumeState = 'complete' | 'partial' | 'processed' | 'failed' | 'quarantined';

/**
 * A member arrives for a volume that already left `collecting`. A changed version of a member it
 * already has always reopens (the data changed); a member it did not have reopens only with
 * `reopenLate`, otherwise it is recorded and the volume's runs stand.
 */
export function lateMemberAction(
  known: ReadonlyMap<string, string>,
  arriving: { member: string; version: string },
  rules: Pick<CompletenessRules, 'reopenLate'>,
): 'reopen' | 'ignore' {
  const had = known.get(arriving.member);
  if (had !== undefined) return had === arriving.version ? 'ignore' : 'reopen';
  return rules.reopenLate ? 'reopen' : 'ignore';
}
