/**
 * `poller volumes` and `poller why` on radar volumes, through the built CLI: which members are
 * there, which are missing, when a collecting volume will be declared partial.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { memberBytes, memberName, volumeRecorder, volumesBlock } from '../helpers/radar-volumes.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const T1 = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

describe('poller volumes and poller why', () => {
  it('list volumes by state, and explain a member path and a volume key', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock({ completeAfter: '10m' }) },
      plugins: (dir) => [volumeRecorder(`${dir}/volumes.jsonl`)],
    });
    const e = env;
    const put = async (radar: string, moment: string) => {
      const { name, key } = memberName(radar, T1, moment);
      await e.put(`in/${name}`, memberBytes(radar, T1, moment));
      return { name, key };
    };
    const done = await put('RMA1', 'DBZH');
    await put('RMA1', 'KDP');
    await put('RMA1', 'VRAD');
    const waiting = await put('RMA2', 'DBZH');
    await put('RMA2', 'VRAD');
    await e.cycle();

    const list = await e.cli(['volumes']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`radar\\s+${done.key}\\s+1\\s+processed\\s+DBZH,KDP,VRAD`));
    expect(list.stdout).toMatch(
      new RegExp(`radar\\s+${waiting.key}\\s+1\\s+collecting\\s+DBZH,VRAD\\s+KDP\\s+\\S+\\s+partial in \\d+m`),
    );

    const json = JSON.parse((await e.cli(['volumes', '--state', 'collecting', '--json'])).stdout);
    expect(json.volumes).toHaveLength(1);
    expect(json.volumes[0]).toMatchObject({
      key: waiting.key,
      state: 'collecting',
      present: ['DBZH', 'VRAD'],
      missing: ['KDP'],
    });
    expect(json.volumes[0].partialAtMs).toBeGreaterThan(Date.now());

    const why = await e.cli(['why', `in/${waiting.name}`]);
    expect(why.code, why.stderr).toBe(0);
    expect(why.stdout).toMatch(
      new RegExp(`in volume ${waiting.key} version 1: collecting: missing KDP; declared partial at \\S+Z \\(in \\d+m`),
    );
    const byKey = await e.cli(['why', waiting.key]);
    expect(byKey.stdout).toMatch(new RegExp(`radar:${waiting.key} \\(version 1\\): collecting: missing KDP`));
    expect(byKey.stdout).toMatch(/members: DBZH, VRAD; first landed/);
    const status = await e.cli(['status']);
    expect(status.stdout).toMatch(/ {2}volumes: collecting 1, processed 1\n/);
    const processed = await e.cli(['why', done.key]);
    expect(processed.stdout).toMatch(/processed \S+: every volume plugin succeeded \(volume-record\)/);
    expect(processed.stdout).toMatch(/volume plugin volume-record: succeeded, 1 attempt\(s\)/);
  });
});
