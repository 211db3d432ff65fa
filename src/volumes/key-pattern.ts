/**
 * The volume key pattern: a regular expression with named groups, matched against a file's remote
 * path. One group names the member (the moment, e.g. DBZH); the group-by fields together name the
 * volume. Pure: compiled once from config, then applied to every listed path.
 */

/** A compiled `volumes:` pattern. */
export interface KeyPattern {
  readonly regex: RegExp;
  /** Every named group of the pattern, in the order written. */
  readonly groups: readonly string[];
  /** The fields that together identify a volume, in key order. */
  readonly groupBy: readonly string[];
  /** The field that names a member inside its volume. */
  readonly member: string;
}

/** What one remote path says about its volume. */
export interface MemberMatch {
  /** Stable volume key: the group-by values joined by `_`, in `groupBy` order. */
  readonly key: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly member: string;
}

// `(?<name>` opens a named group; `(?<=` and `(?<!` (lookbehinds) never match since `=`/`!` are
// not identifier characters.
const NAMED_GROUP = /\(\?<([A-Za-z_$][\w$]*)>/g;

/** Named groups of a pattern source, in the order written. */
export function namedGroupsOf(source: string): string[] {
  return [...source.matchAll(NAMED_GROUP)].map((m) => m[1] as string);
}

/**
 * Compile a key pattern. Returns one problem line per mistake (each naming the fix) instead of
 * throwing, so the config schema can report them all at once.
 */
export function compileKeyPattern(
  pattern: string,
  member: string,
  groupBy?: readonly string[],
): { pattern: KeyPattern; problems: [] } | { pattern?: undefined; problems: string[] } {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch (err) {
    return { problems: [`pattern is not a regular expression (${(err as Error).message}); escape it for YAML`] };
  }
  const groups = namedGroupsOf(pattern);
  const problems: string[] = [];
  if (!groups.includes(member)) {
    problems.push(`member field "${member}" is not a named group of the pattern; add (?<${member}>...)`);
  }
  const by = groupBy ?? groups.filter((g) => g !== member);
  for (const f of by) {
    if (!groups.includes(f))
      problems.push(`groupBy field "${f}" is not a named group of the pattern; add (?<${f}>...)`);
  }
  if (by.includes(member)) problems.push(`groupBy must not contain the member field "${member}"`);
  if (by.length === 0) problems.push('the pattern needs at least one named group besides the member to group by');
  if (problems.length > 0) return { problems };
  return { pattern: { regex, groups, groupBy: by, member }, problems: [] };
}

/** The volume a remote path belongs to, or undefined when the path is not a volume member. */
export function matchMember(p: KeyPattern, remotePath: string): MemberMatch | undefined {
  const m = p.regex.exec(remotePath);
  const g = m?.groups;
  if (!g) return undefined;
  const fields: Record<string, string> = {};
  for (const name of p.groups) {
    const v = g[name];
    if (v !== undefined) fields[name] = v;
  }
  const member = fields[p.member];
  // An optional group that did not take part leaves the path without a full key: not a member.
  if (member === undefined || member === '' || p.groupBy.some((f) => fields[f] === undefined)) return undefined;
  return { key: p.groupBy.map((f) => fields[f]).join('_'), fields, member };
}
