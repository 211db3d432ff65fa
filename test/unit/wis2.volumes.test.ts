/**
 * Radar volumes as one object: the notification's canonical link fetches an archive of the
 * whole volume written into the landing tree (GNU tar reads it back, member by member), with its
 * SHA-512 and length; under 8192 bytes for 7 and 60 members; `data_id` stable across versions,
 * a new version an `update` naming exactly the members that changed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SinkConfig } from '../../src/config/load.js';
import { formatEvent, isUnsendable } from '../../src/events/payload.js';
import { VolumeArchives } from '../../src/events/volume-archive.js';
import type { OutboxEvent, VolumeFact } from '../../src/ledger/ledger.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { officialAvailable, officialProblems } from '../helpers/wis2-official.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

const official = officialAvailable();
let tmp: TmpDir | undefined;
afterEach(async () => {
  await tmp?.remove();
  tmp = undefined;
});

const BASE = 'https://data.example.org/poller';
const T0 = Date.UTC(2026, 10, 23, 12);
const sink = {
  name: 'gb',
  type: 'mqtt',
  kinds: ['volume-complete'],
  sources: null,
  format: 'wnm',
  inlineContent: false,
  publicBaseUrl: BASE,
} as unknown as SinkConfig;

function memberNames(n: number): string[] {
  const base = ['DBZH', 'TH', 'VRADH', 'WRADH', 'ZDR', 'RHOHV', 'KDP'];
  return Array.from({ length: n }, (_v, i) => (i < base.length ? base[i]! : `SWEEP${String(i).padStart(2, '0')}`));
}

/** Lands the members of one version under <landing>/radar/ and returns its volume event. */
function landVolume(landing: string, names: string[], version: number, seed: (m: string) => string): OutboxEvent {
  const key = 'RMA1_0315_01_20261123T120000Z';
  const members = names.map((member, i) => {
    const p = `in/2026/RMA1_0315_01_${member}_20261123T120000Z.BUFR`;
    const bytes = Buffer.from(`BUFR ${member} ${seed(member)} ${'x'.repeat(100 + i)}`);
    mkdirSync(path.join(landing, 'radar', 'in', '2026'), { recursive: true });
    writeFileSync(path.join(landing, 'radar', p), bytes);
    return { member, fileId: i + 1, path: p, sizeBytes: bytes.length, mtimeMs: T0 + i * 1000 };
  });
  const volume: VolumeFact = {
    id: version,
    key,
    version,
    fields: { radar: 'RMA1', time: '20261123T120000Z' },
    partial: false,
    firstMemberMs: T0,
    lastMemberMs: T0 + names.length * 1000,
    members,
  };
  return {
    seq: version,
    id: `2b3c4d5e-0000-4000-8000-00000000000${version}`,
    sink: 'gb',
    kind: 'volume-complete',
    source: 'radar',
    fileId: 0,
    volumeId: version,
    atMs: T0 + 60_000 * version,
    fact: { path: key, sizeBytes: members.reduce((a, m) => a + m.sizeBytes, 0), mtimeMs: T0, volume },
  };
}

interface Msg {
  properties: { data_id: string; integrity: { value: string }; volume: Record<string, unknown> };
  links: Array<{ href: string; rel: string; length?: number; type?: string }>;
}

async function announce(landing: string, archives: VolumeArchives, e: OutboxEvent) {
  const m = await formatEvent(e, { centreId: 'xx-test', sink, sources: new Map(), volumes: archives });
  if (isUnsendable(m)) throw new Error(m.reason);
  const msg = JSON.parse(m.body.toString()) as Msg;
  const link = msg.links[0]!;
  const file = path.join(landing, ...decodeURIComponent(link.href.slice(BASE.length + 1)).split('/'));
  return { m, msg, link, file, bytes: readFileSync(file) };
}

describe('radar volumes as one object', () => {
  for (const n of [7, 60]) {
    it(`${n} members: under 8192 bytes; the canonical link fetches the whole volume, integrity and length match`, async () => {
      tmp = await makeTmpDir('poller-volwnm-');
      const landing = tmp.path;
      const archives = new VolumeArchives(landing);
      const e = landVolume(landing, memberNames(n), 1, () => 'v1');
      const { m, msg, link, file, bytes } = await announce(landing, archives, e);
      console.log(`[wis2] volume notification of ${n} members: ${m.body.length} bytes, archive ${bytes.length} bytes`);
      expect(m.body.length).toBeLessThan(8192);
      expect(wnmProblems(m.body)).toEqual([]);
      if (official) expect(officialProblems(m.body)).toEqual([]);
      expect(msg.properties.data_id).toBe('xx-test/radar/volumes/RMA1_0315_01_20261123T120000Z');
      expect(link).toMatchObject({ rel: 'canonical', type: 'application/x-tar', length: bytes.length });
      expect(msg.links.filter((l) => ['canonical', 'update'].includes(l.rel))).toHaveLength(1);
      expect(createHash('sha512').update(bytes).digest('base64')).toBe(msg.properties.integrity.value);
      expect(msg.properties.volume).toMatchObject({ key: e.fact.path, version: 1, complete: true, members: n });
      // The archive is the volume: GNU tar lists every member and gives back its bytes.
      const listed = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
      expect(listed).toEqual(e.fact.volume!.members.map((x) => x.path));
      for (const x of e.fact.volume!.members.slice(0, 3))
        expect(execFileSync('tar', ['-xOf', file, x.path])).toEqual(readFileSync(path.join(landing, 'radar', x.path)));
      // Written again (a crash before the acknowledgement): the same bytes, the same hash.
      const again = await announce(landing, new VolumeArchives(landing), e);
      expect(again.msg.properties.integrity.value).toBe(msg.properties.integrity.value);
    });
  }

  it('a new version: same data_id, an update link, what changed said; the first version stays fetchable', async () => {
    tmp = await makeTmpDir('poller-volwnm-');
    const landing = tmp.path;
    const archives = new VolumeArchives(landing);
    const names = memberNames(7);
    const v1 = await announce(
      landing,
      archives,
      landVolume(landing, names, 1, () => 'v1'),
    );
    const v1Bytes = v1.bytes;
    const v2 = await announce(
      landing,
      archives,
      landVolume(landing, names, 2, (m) => (m === 'VRADH' ? 'corrected' : 'v1')),
    );
    expect(v2.msg.properties.data_id).toBe(v1.msg.properties.data_id);
    expect(v2.link.rel).toBe('update');
    expect(v2.link.href).not.toBe(v1.link.href);
    expect(v2.msg.properties.volume).toMatchObject({ version: 2, changed: ['VRADH'] });
    expect(v2.msg.properties.integrity.value).not.toBe(v1.msg.properties.integrity.value);
    expect(readFileSync(v1.file)).toEqual(v1Bytes);
    expect(wnmProblems(v2.m.body)).toEqual([]);
    if (official) expect(officialProblems(v2.m.body)).toEqual([]);
    // A member gone from the landing tree: not announced, with the reason (a newer version follows).
    const gone = landVolume(landing, names, 3, () => 'v3');
    writeFileSync(path.join(landing, 'radar', gone.fact.volume!.members[0]!.path), 'short');
    const m = await formatEvent(gone, { centreId: 'xx-test', sink, sources: new Map(), volumes: archives });
    expect(isUnsendable(m) && m.reason).toMatch(/volume archive not written: .* is 5 bytes now/);
  });
});
