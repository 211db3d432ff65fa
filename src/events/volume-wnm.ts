/**
 * A radar volume version as one WIS2 notification: the canonical link (`update` from version 2
 * on) fetches the whole volume, an archive written into the landing tree (volume-archive.ts),
 * with its SHA-512 as `integrity` and its `length`; a `describedby` link gives the manifest.
 * `data_id` is `<centre-id>/<source>/volumes/<key>`, the same for every version, so a Global
 * Cache replaces the cached volume with the new version. The message stays small for any
 * number of members: members are named, not linked, and past the size limit the name lists
 * give way to counts.
 */
import type { VolumeFact } from '../ledger/ledger.js';
import type { VolumeObject } from './volume-archive.js';
import {
  datetimeFromPath,
  encodePath,
  metadataId,
  rfc3339,
  WNM_CONFORMS_TO,
  WNM_MAX_BYTES,
  type WnmInput,
  type WnmMessage,
} from './wnm.js';

export interface VolumeWnmInput extends Omit<WnmInput, 'inlineBase64' | 'deletion' | 'publicBaseUrl'> {
  readonly publicBaseUrl: string;
  readonly archive: VolumeObject;
}

function volumeProperty(v: VolumeFact, a: VolumeObject, lists: boolean): Record<string, unknown> {
  const names = v.members.map((m) => m.member);
  return {
    key: v.key,
    version: v.version,
    fields: v.fields,
    complete: !v.partial,
    partial: v.partial,
    members: names.length,
    ...(lists ? { moments: names } : {}),
    ...(a.changed && (lists ? { changed: a.changed } : { changed_count: a.changed.length })),
    ...(a.removed && (lists ? { removed: a.removed } : { removed_count: a.removed.length })),
    first_member_time: rfc3339(v.firstMemberMs),
    last_member_time: rfc3339(v.lastMemberMs),
  };
}

export function buildVolumeWnm(input: VolumeWnmInput, lists = true): WnmMessage {
  const v = input.fact.volume;
  if (!v) throw new Error('buildVolumeWnm: the event has no volume');
  const a = input.archive;
  const first = v.members[0];
  const base = input.publicBaseUrl;
  return {
    id: input.id,
    conformsTo: [WNM_CONFORMS_TO],
    type: 'Feature',
    geometry: input.wnm?.geometry ?? null,
    properties: {
      data_id: `${input.centreId}/${input.source}/volumes/${v.key}`,
      ...metadataId(input),
      pubtime: rfc3339(input.atMs),
      datetime: first ? datetimeFromPath(first.path, input.wnm?.datetimePattern) : null,
      integrity: { method: 'sha512', value: a.sha512 },
      volume: volumeProperty(v, a, lists),
    },
    links: [
      {
        href: `${base}/${encodePath(a.rel)}`,
        rel: v.version > 1 ? 'update' : 'canonical',
        type: 'application/x-tar',
        length: a.sizeBytes,
        title: `volume ${v.key}, version ${v.version}: ${v.members.length} member(s)`,
      },
      { href: `${base}/${encodePath(a.manifestRel)}`, rel: 'describedby', type: 'application/json' },
    ],
  };
}

/** The volume notification as sent: with the member name lists when they fit, else with counts; undefined when even that is over the limit. */
export function encodeVolumeWnm(input: VolumeWnmInput): Buffer | undefined {
  for (const lists of [true, false]) {
    const body = Buffer.from(JSON.stringify(buildVolumeWnm(input, lists)));
    if (body.length <= WNM_MAX_BYTES) return body;
  }
  return undefined;
}
