/**
 * A landing root per host: a radar volume's members may have landed on several instances, and its
 * plugins need every member here. The instance that claimed the volume version gathers it: a
 * member this landing holds at its version is used in place; any other is fetched again from the
 * source into `<landing>/.gathered/<source>/<remote path>` (the same crash-safe landing: partial,
 * size check, fsync, rename), never over this landing's own tree, where a newer version of the
 * path may wait for its plugins. Why gathering rather than routing members' fetches to one
 * instance: README "Which landing mode".
 */
import path from 'node:path';
import { PermanentError } from '../errors.js';
import type { VolumeMemberRecord, VolumeRecord } from '../ledger/volume-ledger.js';
import type { Source } from '../sources/source.js';
import { isAlreadyLanded, landFile } from '../transfer/landing.js';
import { landingPathFor } from '../transfer/landing-path.js';

/** The volume version with every member's `localPath` on this host; throws when a member cannot be fetched. */
export type GatherVolume = (sourceName: string, v: VolumeRecord, signal: AbortSignal) => Promise<VolumeRecord>;

/** Gathered members go here, beside the source trees (a source name never starts with a dot). */
export function gatheredRoot(landingRoot: string): string {
  return path.join(landingRoot, '.gathered');
}

export function volumeGatherer(
  landingRoot: string,
  sourceOf: (sourceName: string) => Source | undefined,
): GatherVolume {
  return async (sourceName, v, signal) => {
    const members: VolumeMemberRecord[] = [];
    for (const m of v.members) members.push(await gatherMember(landingRoot, sourceName, m, sourceOf, signal));
    return { ...v, members };
  };
}

async function gatherMember(
  landingRoot: string,
  sourceName: string,
  m: VolumeMemberRecord,
  sourceOf: (sourceName: string) => Source | undefined,
  signal: AbortSignal,
): Promise<VolumeMemberRecord> {
  const own = landingPathFor(landingRoot, sourceName, m.path);
  if (await isAlreadyLanded(own, m)) return { ...m, localPath: own };
  const gathered = landingPathFor(gatheredRoot(landingRoot), sourceName, m.path);
  if (await isAlreadyLanded(gathered, m)) return { ...m, localPath: gathered };
  const source = sourceOf(sourceName);
  if (!source)
    throw new PermanentError(
      'POLLER_VOLUME_GATHER_FAILED',
      `cannot gather member ${m.path} of a volume: source ${sourceName} is not configured here`,
    );
  const landed = await landFile(source, {
    landingRoot: gatheredRoot(landingRoot),
    sourceName,
    fileId: m.fileId,
    entry: { path: m.path, sizeBytes: m.sizeBytes, mtimeMs: m.mtimeMs },
    signal,
  });
  return { ...m, localPath: landed.localPath };
}
