/**
 * Every WIS2 notification poller emits, end to end (run-once against a real FTP server, a file
 * sink, the landing tree served over HTTP under `publicBaseUrl`): new files, updated files,
 * radar volumes and their new versions pass the official bundled schema and the abstract tests
 * of the core class, and poller's own rules; and each data link, followed as a Global Cache
 * would, gives bytes whose length and SHA-512 are the ones announced. A file removed upstream
 * after it was announced is announced again as a `deletion` of the same data_id.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadTopicTree, topicProblems } from '../../src/events/topic-hierarchy.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { MOMENTS, memberBytes, memberName, volumesBlock } from '../helpers/radar-volumes.js';
import { type StaticServer, startStaticServer } from '../helpers/static-http.js';
import { officialAvailable, officialProblems, TOPIC_HIERARCHY_DIR } from '../helpers/wis2-official.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

const available = officialAvailable();

let env: EngineEnv | undefined;
let web: StaticServer | undefined;
afterEach(async () => {
  await env?.close();
  await web?.close();
  env = undefined;
  web = undefined;
});

interface Wnm {
  id: string;
  properties: Record<string, unknown> & { data_id: string; integrity?: { method: string; value: string } };
  links: Array<{ href: string; rel: string; length?: number; type?: string }>;
}
interface Line {
  topic: string;
  id: string;
  message: Wnm & { type: string };
}

function lines(e: EngineEnv): Line[] {
  const file = path.join(e.dir, 'events.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

const T1 = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));
const SYNOP = 'obs/ISMD01_LFPW_20261123120000.bufr';
const WIS2 = 'origin/a/wis2/{centreId}/data/core/weather/surface-based-observations';

/** Follows the one data link: status, length and SHA-512 as announced. */
async function followDataLink(m: Wnm): Promise<{ rel: string; ok: boolean; why?: string }> {
  const link = m.links.find((l) => ['canonical', 'update', 'deletion'].includes(l.rel));
  if (!link) return { rel: 'none', ok: false, why: 'no data link' };
  if (link.rel === 'deletion') return { rel: link.rel, ok: true };
  const res = await fetch(link.href);
  if (res.status !== 200) return { rel: link.rel, ok: false, why: `${link.href}: HTTP ${res.status}` };
  const bytes = Buffer.from(await res.arrayBuffer());
  if (link.length !== undefined && bytes.length !== link.length)
    return { rel: link.rel, ok: false, why: `${link.href}: ${bytes.length} bytes, announced ${link.length}` };
  const integ = m.properties.integrity;
  if (!integ) return { rel: link.rel, ok: false, why: `${m.properties.data_id}: no integrity` };
  const digest = createHash(integ.method).update(bytes).digest('base64');
  if (digest !== integ.value) return { rel: link.rel, ok: false, why: `${link.href}: integrity does not match` };
  return { rel: link.rel, ok: true };
}

describe.skipIf(!available)('WNM conformance of what poller emits', () => {
  it('files, updates, volumes and volume versions: official schema, abstract tests, links that fetch what they say', async () => {
    web = await startStaticServer('/nonexistent');
    env = await startEngineEnv({
      source: {
        include: ['**/*.bufr', '**/*.BUFR'],
        volumes: volumesBlock({ completeAfter: '300ms' }),
        wnm: {
          metadataId: 'urn:wmo:md:xx-test:radar',
          geometry: { type: 'Point', coordinates: [-64.2, -31.4] },
          datetimePattern: '(?<Y>\\d{4})(?<m>\\d{2})(?<d>\\d{2})T?(?<H>\\d{2})(?<M>\\d{2})(?<S>\\d{2})',
          // Topic by rule: volumes and radar files on weather-radar, SYNOP bulletins on synop.
          topics: [
            { volumes: true, topic: `${WIS2}/weather-radar` },
            { match: '**/RMA*', mediaType: 'application/bufr', topic: `${WIS2}/weather-radar` },
            { match: '**/IS*', topic: `${WIS2}/synop` },
          ],
        },
      },
      plugins: [],
      config: {
        events: {
          centreId: 'xx-test',
          topicHierarchy: TOPIC_HIERARCHY_DIR,
          sinks: [
            {
              name: 'log',
              type: 'file',
              url: './events.jsonl',
              kinds: ['fetched', 'volume-complete', 'volume-partial'],
              publicBaseUrl: 'http://127.0.0.1:1/placeholder',
            },
          ],
        },
      },
    });
    const e = env;
    await web.close();
    web = await startStaticServer(e.landing);
    // The served landing tree is the public base: point the sink at it.
    const config = JSON.parse(readFileSync(e.configPath, 'utf8')) as {
      events: { sinks: Array<Record<string, unknown>> };
    };
    config.events.sinks[0]!['publicBaseUrl'] = web.url;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(e.configPath, JSON.stringify(config));

    const hourAgo = Date.now() - 3_600_000;
    await e.put(SYNOP, 'synop v1', hourAgo);
    for (const m of MOMENTS) await e.put(`in/${memberName('RMA1', T1, m).name}`, memberBytes('RMA1', T1, m), hourAgo);
    const tree = loadTopicTree(TOPIC_HIERARCHY_DIR);
    const table = new Map<string, { n: number; official: number; poller: number; fetched: number }>();
    const failures: string[] = [];
    const seen = new Set<string>();
    // A Global Cache follows a link when the notification arrives: check each run's messages then.
    const check = async () => {
      for (const l of lines(e)) {
        if (l.message.type !== 'Feature' || seen.has(l.id)) continue;
        seen.add(l.id);
        const body = Buffer.from(JSON.stringify(l.message));
        const isVolume = l.message.properties['volume'] !== undefined;
        const follow = await followDataLink(l.message);
        const key = `${isVolume ? 'volume' : 'file'} ${follow.rel}`;
        const row = table.get(key) ?? { n: 0, official: 0, poller: 0, fetched: 0 };
        row.n++;
        const official = officialProblems(body);
        const poller = wnmProblems(body);
        if (official.length === 0) row.official++;
        else failures.push(`${key} ${l.message.properties.data_id}: ${official.join('; ')}`);
        if (poller.length === 0) row.poller++;
        else failures.push(`${key} ${l.message.properties.data_id}: poller: ${poller.join('; ')}`);
        const expected = isVolume || l.message.properties.data_id.includes('/RMA') ? 'weather-radar' : 'synop';
        const topicWrong = topicProblems(l.topic, { centreId: 'xx-test', ...(tree && { tree }) });
        if (!l.topic.endsWith(`/${expected}`) || topicWrong.length > 0)
          failures.push(`${key} on ${l.topic}: expected .../${expected} ${topicWrong.join('; ')}`);
        if (follow.ok) row.fetched++;
        else failures.push(`${key}: ${follow.why}`);
        table.set(key, row);
      }
    };
    const first = await e.cli(['run-once']);
    expect(first.code, first.stderr).toBe(0);
    await check();
    // New versions: the SYNOP bulletin corrected, one radar moment re-sent with other data.
    await e.put(SYNOP, 'synop v2, corrected', hourAgo + 60_000);
    await e.put(`in/${memberName('RMA1', T1, 'DBZH').name}`, memberBytes('RMA1', T1, 'DBZH', 1), hourAgo + 60_000);
    const second = await e.cli(['run-once']);
    expect(second.code, second.stderr).toBe(0);
    await check();
    const got = lines(e).filter((l) => l.message.type === 'Feature');
    console.log(`[wis2] emitted messages: ${JSON.stringify(Object.fromEntries(table))}`);
    expect(failures).toEqual([]);
    expect([...table.keys()].sort()).toEqual(['file canonical', 'file update', 'volume canonical', 'volume update']);
    expect(table.get('file canonical')?.n).toBe(4);
    expect(table.get('file update')?.n).toBe(2);
    // A volume is one data_id across versions; the new version says which member changed.
    const volumes = got.filter((l) => l.message.properties['volume'] !== undefined);
    expect(new Set(volumes.map((l) => l.message.properties.data_id)).size).toBe(1);
    expect(volumes[1]?.message.properties['volume']).toMatchObject({ version: 2, changed: ['DBZH'] });
    // One id per message.
    expect(new Set(got.map((l) => l.id)).size).toBe(got.length);
    expect(got.every((l) => l.id === l.message.id)).toBe(true);
  }, 120_000);

  it('a file removed upstream after its announcement: a deletion of the same data_id, official, once', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.bufr'], goneAfterListings: 1, mirrorDeletes: true, stableListings: 1 },
      plugins: [],
      config: {
        events: {
          centreId: 'xx-test',
          sinks: [
            {
              name: 'log',
              type: 'file',
              url: './events.jsonl',
              kinds: ['fetched', 'gone'],
              topic: `${WIS2}/synop`,
              publicBaseUrl: 'http://127.0.0.1:8080/data',
            },
          ],
        },
      },
    });
    const e = env;
    const hourAgo = Date.now() - 3_600_000;
    const names = ['obs/a.bufr', 'obs/b.bufr', 'obs/c.bufr'];
    for (const n of names) await e.put(n, `bytes of ${n}`, hourAgo);
    const first = await e.cli(['run-once']);
    expect(first.code, first.stderr).toBe(0);
    const announced = lines(e).filter((l) => l.message.links[0]?.rel === 'canonical');
    expect(announced).toHaveLength(3);
    await rm(path.join(e.ftp.root, 'obs', 'b.bufr'));
    const second = await e.cli(['run-once']);
    expect(second.code, second.stderr).toBe(0);
    const third = await e.cli(['run-once']);
    expect(third.code, third.stderr).toBe(0);
    const deletions = lines(e).filter((l) => l.message.links.some((k) => k.rel === 'deletion'));
    expect(deletions).toHaveLength(1);
    const d = deletions[0] as Line;
    const before = announced.find((l) => l.message.properties.data_id.endsWith('/obs/b.bufr')) as Line;
    const body = Buffer.from(JSON.stringify(d.message));
    console.log(`[wis2] deletion message: ${body.length} bytes, official problems ${officialProblems(body).length}`);
    expect(officialProblems(body)).toEqual([]);
    expect(wnmProblems(body)).toEqual([]);
    expect(d.message.properties.data_id).toBe(before.message.properties.data_id);
    expect(d.message.links).toEqual([{ href: before.message.links[0]?.href, rel: 'deletion' }]);
    expect(d.message.properties.integrity).toBeUndefined();
    expect(d.topic).toBe(before.topic);
    expect(d.id).not.toBe(before.id);
    // mirrorDeletes: the copy of b is gone from the landing tree, a and c stay.
    expect(existsSync(path.join(e.landing, 'radar', 'obs', 'b.bufr'))).toBe(false);
    expect(existsSync(path.join(e.landing, 'radar', 'obs', 'a.bufr'))).toBe(true);
  }, 120_000);
});
