/**
 * Volume events end to end: run-once against a real FTP server (ftp-srv) with a file sink; a
 * complete volume and a partial one (after the quiet time) are announced as WIS2 notifications
 * listing their members, the volume plugin's output and the processed volume as CloudEvents.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { MOMENTS, memberBytes, memberName, volumeRecorder, volumesBlock } from '../helpers/radar-volumes.js';
import { waitFor } from '../helpers/wait-for.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

/** WNM sinks announce links under a public base (a subscriber cannot follow the FTP source's). */
const PUBLIC_BASE = 'https://data.example.org/poller';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const T1 = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

interface Line {
  topic: string;
  id: string;
  message: Record<string, unknown> & {
    type: string;
    properties?: { data_id: string; datetime: string | null; volume: Record<string, unknown> };
    links?: Array<{ href: string; rel: string; title: string; length: number }>;
    data?: Record<string, unknown> & { volume?: Record<string, unknown>; output?: { path: string } };
  };
}

function lines(e: EngineEnv): Line[] {
  const file = path.join(e.dir, 'events.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

describe('volume events', () => {
  it('a complete and a partial volume reach a file sink as WNM; output and processed as CloudEvents', async () => {
    env = await startEngineEnv({
      source: {
        include: ['**/*.BUFR'],
        volumes: volumesBlock({ completeAfter: '300ms' }),
        wnm: { datetimePattern: '(?<Y>\\d{4})(?<m>\\d{2})(?<d>\\d{2})T(?<H>\\d{2})(?<M>\\d{2})(?<S>\\d{2})Z' },
      },
      plugins: (dir) => [volumeRecorder(path.join(dir, 'volumes.jsonl'), { emitTo: path.join(dir, 'out') })],
      config: {
        events: {
          centreId: 'xx-test',
          sinks: [
            {
              name: 'log',
              type: 'file',
              publicBaseUrl: PUBLIC_BASE,
              url: './events.jsonl',
              kinds: ['volume-complete', 'volume-partial', 'volume-processed', 'volume-output'],
            },
          ],
        },
      },
    });
    const e = env;
    const full = memberName('RMA1', T1, 'DBZH').key;
    for (const m of MOMENTS) await e.put(`in/${memberName('RMA1', T1, m).name}`, memberBytes('RMA1', T1, m));
    const partial = memberName('RMA2', T1, 'DBZH').key;
    for (const m of ['DBZH', 'VRAD']) await e.put(`in/${memberName('RMA2', T1, m).name}`, memberBytes('RMA2', T1, m));

    const run = await e.cli(['run-once', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { events: Array<{ sink: string; pending: number }> };
    expect(summary.events).toMatchObject([{ sink: 'log', pending: 0 }]);
    // The partial one closes after its quiet time: run again until it is announced (bounded).
    await waitFor(
      async () => {
        if (lines(e).some((l) => l.message.properties?.volume?.['key'] === partial)) return true;
        const again = await e.cli(['run-once']);
        expect(again.code, again.stderr).toBe(0);
        return false;
      },
      { timeoutMs: 30_000, what: 'the partial volume event' },
    );

    const got = lines(e);
    const ofKey = (key: string) =>
      got.filter((l) => (l.message.properties?.volume ?? l.message.data?.volume)?.['key'] === key);
    // No file events: the sink asked for volume kinds only.
    expect(got.every((l) => ofKey(full).includes(l) || ofKey(partial).includes(l))).toBe(true);
    const kinds = (key: string) => ofKey(key).map((l) => l.message.type);
    expect(kinds(full)).toEqual(['Feature', 'org.poller.volume.output', 'org.poller.volume.processed']);
    expect(kinds(partial)).toEqual(['Feature', 'org.poller.volume.output', 'org.poller.volume.processed']);

    const [complete] = ofKey(full);
    expect(wnmProblems(Buffer.from(JSON.stringify(complete!.message)))).toEqual([]);
    expect(complete!.message.properties).toMatchObject({
      data_id: `xx-test/radar/volumes/${full}`,
      datetime: '2026-11-23T12:00:00Z',
      volume: {
        key: full,
        version: 1,
        complete: true,
        partial: false,
        members: 3,
        moments: ['DBZH', 'KDP', 'VRAD'],
        fields: { radar: 'RMA1', time: '20261123T120000Z' },
      },
    });
    // One object: the canonical link is the volume's archive in the landing tree, under the public base.
    const links = complete!.message.links ?? [];
    expect(links.map((k) => [k.rel, k.href])).toEqual([
      ['canonical', `${PUBLIC_BASE}/_volumes/radar/${full}/v1.tar`],
      ['describedby', `${PUBLIC_BASE}/_volumes/radar/${full}/v1.json`],
    ]);
    const archive = readFileSync(path.join(e.landing, '_volumes', 'radar', full, 'v1.tar'));
    expect(links[0]!.length).toBe(archive.length);
    for (const m of MOMENTS) expect(archive.includes(Buffer.from(memberBytes('RMA1', T1, m)))).toBe(true);
    // Credentials never go out.
    expect(JSON.stringify(got)).not.toContain(e.ftp.password);

    const [announced] = ofKey(partial);
    expect(wnmProblems(Buffer.from(JSON.stringify(announced!.message)))).toEqual([]);
    expect(announced!.message.properties?.volume).toMatchObject({
      complete: false,
      partial: true,
      moments: ['DBZH', 'VRAD'],
    });

    const output = ofKey(full)[1]!.message.data?.output;
    expect(output).toEqual({ path: path.join(e.dir, 'out', `${full}.json`), kind: 'volume-record.manifest' });
    expect(ofKey(full)[2]!.message).toMatchObject({ severity: 'info', subject: full, data: { outputs: [output] } });
    // One id per event.
    expect(new Set(got.map((l) => l.id)).size).toBe(got.length);
  }, 90_000);
});
