/**
 * Grouping: files (remote path + file version) into volumes by the key pattern. Pure, so the
 * engine's volume stage and `poller why` compute the same grouping from the same ledger rows.
 */
import { createHash } from 'node:crypto';
import { type KeyPattern, matchMember } from './key-pattern.js';

/** A file as the volume stage sees it. */
export interface VolumeFile {
  readonly path: string;
  /** The ledger's file version (it changes when the remote file changes). */
  readonly version: string;
  /** When this version of the file was committed, ms since the epoch. */
  readonly seenAtMs: number;
}

export interface VolumeMember extends VolumeFile {
  readonly member: string;
}

export interface GroupedVolume {
  readonly key: string;
  readonly fields: Readonly<Record<string, string>>;
  /** By member name; one file per member. */
  readonly members: ReadonlyMap<string, VolumeMember>;
}

/**
 * Group files into volumes. Files the pattern does not match are not members and are left out.
 * Two files for one member (a re-sent moment under a second name) keep the later one, so the
 * volume follows what the radar sent last.
 */
export function groupVolumes(p: KeyPattern, files: readonly VolumeFile[]): Map<string, GroupedVolume> {
  const out = new Map<string, { key: string; fields: Record<string, string>; members: Map<string, VolumeMember> }>();
  for (const f of files) {
    const m = matchMember(p, f.path);
    if (!m) continue;
    let v = out.get(m.key);
    if (!v) {
      const fields = Object.fromEntries(Object.entries(m.fields).filter(([k]) => k !== p.member));
      v = { key: m.key, fields, members: new Map() };
      out.set(m.key, v);
    }
    const prev = v.members.get(m.member);
    if (!prev || f.seenAtMs > prev.seenAtMs || (f.seenAtMs === prev.seenAtMs && f.path > prev.path)) {
      v.members.set(m.member, { ...f, member: m.member });
    }
  }
  return out;
}

/**
 * The volume version: a digest of (member, path, file version) pairs in member order. It changes
 * exactly when a member is added or removed or a member's file version changes, which is what
 * decides "run the volume plugins again".
 */
export function volumeVersion(members: ReadonlyMap<string, VolumeMember> | readonly VolumeMember[]): string {
  const list = [...(Array.isArray(members) ? members : (members as ReadonlyMap<string, VolumeMember>).values())];
  list.sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  const h = createHash('sha256');
  for (const m of list) h.update(`${m.member}\0${m.path}\0${m.version}\n`);
  return h.digest('hex').slice(0, 16);
}
