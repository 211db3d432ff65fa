/**
 * A landing root per host: three `poller run` processes of the built CLI on one PostgreSQL ledger,
 * each with a landing directory of its own (`landingMode: per-host`), polling one vsftpd. Each of
 * the 600 files is sent once (vsftpd's transfer log), landed in one instance's landing only, and
 * processed there once; every instance takes a share, and the ledger says which one holds each.
 * Radar volumes whose members landed on several instances are gathered on the one that runs them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { readXferlog } from '../helpers/debian-ftp.js';
import { FIXTURE_PLUGINS } from '../helpers/engine-env.js';
import { closeSite, type FleetSite, openSite, putFile, startMember, vsftpdAvailable } from '../helpers/fleet.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';
import {
  MOMENTS,
  memberBytes,
  memberName,
  type VolumeRecorded,
  volumeRecorder,
  volumesBlock,
} from '../helpers/radar-volumes.js';
import { countBy, readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

const vsftpd = vsftpdAvailable('per-host landing tests');
const FILES = 600;
let site: FleetSite | undefined;
afterEach(async () => {
  await closeSite(site);
  site = undefined;
});

describe.skipIf(!pgAvailable || !vsftpd)('a landing root per host (PostgreSQL, vsftpd)', () => {
  it('three instances, 600 files: each sent once, landed and processed in one instance’s own landing; every instance a share', async () => {
    site = await openSite('poller-per-host-');
    const { tmp, server, members } = site;
    const names = Array.from({ length: FILES }, (_, i) => `f${String(i).padStart(3, '0')}.bufr`);
    for (const n of names) await putFile(site, n, `${n}\n`.repeat(200));
    const url = await freshDatabase();
    const recordLog = path.join(tmp.path, 'record.jsonl');
    const fleet = {
      dir: tmp.path,
      ledger: url,
      server,
      // Small batches: the instances take turns at the due files.
      source: { include: ['*.bufr'], every: '1s', maxFilesPerPoll: 20, concurrency: 2, maxConnections: 2 },
      config: () => ({
        landingMode: 'per-host',
        leaseTime: '5s',
        plugins: [{ use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log: recordLog } }],
      }),
    };
    const ids = ['edge-a', 'edge-b', 'edge-c'];
    members.push(...(await Promise.all(ids.map((id) => startMember(fleet, id)))));
    site.ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = site.ledger;
    await waitFor(async () => (await l.stats()).fileRows === FILES && (await processedCount(l)) === FILES, {
      timeoutMs: 240_000,
      intervalMs: 500,
      what: `all ${FILES} processed`,
    });

    // vsftpd sent each file once, in full.
    const sent = (await readXferlog(server.xferlogPath ?? '')).filter((t) => t.complete);
    const perName = countBy(sent, (t) => path.basename(t.path));
    expect([...perName.keys()].sort()).toEqual(names);
    for (const n of names) expect(perName.get(n), n).toBe(1);

    // Each file is in exactly one landing, and the ledger names that instance as its holder.
    const landed = new Map<string, string>();
    for (const m of members) {
      const dir = path.join(m.landing, 'radar');
      for (const n of existsSync(dir) ? await readdir(dir) : []) {
        expect(landed.get(n), `${n} in two landings`).toBeUndefined();
        landed.set(n, m.id);
      }
    }
    expect([...landed.keys()].sort()).toEqual(names);
    const rows = await l.files({ limit: FILES + 1 });
    expect(rows).toHaveLength(FILES);
    for (const r of rows) {
      expect(r.state, r.path).toBe('processed');
      expect(r.landedOn, r.path).toBe(landed.get(r.path));
      expect(r.localPath, r.path).toBe(path.join(members.find((m) => m.id === r.landedOn)!.landing, 'radar', r.path));
    }

    // One plugin run per file, by the instance whose landing holds it, on its own copy.
    const records = readRecords(recordLog);
    const runs = countBy(records, (r) => r.path);
    expect([...runs.keys()].sort()).toEqual(names);
    for (const n of names) expect(runs.get(n), n).toBe(1);
    const byPid = new Map(members.map((m) => [m.child.pid, m]));
    for (const r of records) {
      const m = byPid.get(r.pid);
      expect(m?.id, r.path).toBe(landed.get(r.path));
      expect(r.localPath, r.path).toBe(path.join(m!.landing, 'radar', r.path));
    }

    // Every instance a share.
    const shares = countBy([...landed.values()], (id) => id);
    for (const id of ids) expect(shares.get(id) ?? 0, `${id}'s share`).toBeGreaterThan(0);
    console.log(`per-host landing, ${FILES} files: shares ${ids.map((id) => `${id} ${shares.get(id)}`).join(', ')}`);

    for (const m of members) m.child.kill('SIGTERM');
    for (const m of members) expect((await m.exited).code, `${m.id}: ${m.stderr().slice(0, 300)}`).toBe(0);
  }, 300_000);

  it('radar volumes whose members landed on several instances: gathered where they run, each volume once', async () => {
    site = await openSite('poller-per-host-vol-');
    const { tmp, server, members } = site;
    const VOLUMES = 12;
    const base = Date.UTC(2026, 11, 8, 1, 0, 0);
    const files: string[] = [];
    const keys: string[] = [];
    for (let v = 0; v < VOLUMES; v++) {
      const t = new Date(base + v * 300_000);
      for (const [i, moment] of MOMENTS.entries()) {
        const { name, key } = memberName('RMA1', t, moment);
        if (i === 0) keys.push(key);
        // Members of one volume far apart in mtime order (newest first, small batches): they
        // land in different batches, so mostly on different instances.
        await putFile(
          site,
          name,
          memberBytes('RMA1', t, moment),
          new Date(Date.now() - 3_600_000 + (i * VOLUMES + v) * 1000),
        );
        files.push(name);
      }
    }
    const url = await freshDatabase();
    const volumeLog = path.join(tmp.path, 'volumes.jsonl');
    const fleet = {
      dir: tmp.path,
      ledger: url,
      server,
      source: {
        include: ['*.BUFR'],
        every: '1s',
        maxFilesPerPoll: 2,
        concurrency: 1,
        maxConnections: 1,
        volumes: volumesBlock({ completeAfter: '2m' }),
      },
      config: (id: string) => ({
        landingMode: 'per-host',
        leaseTime: '5s',
        // The plugin refuses a member outside this instance's own landing.
        plugins: [volumeRecorder(volumeLog, { insideDir: path.join(tmp.path, id, 'landing') })],
      }),
    };
    const ids = ['edge-a', 'edge-b', 'edge-c'];
    members.push(...(await Promise.all(ids.map((id) => startMember(fleet, id)))));
    site.ledger = await PostgresLedger.open({ url, displayUrl: url });
    const vl = site.ledger.volumes;
    await waitFor(
      async () => (await vl.volumes({ source: 'radar', state: 'processed', limit: 100 })).length === VOLUMES,
      {
        timeoutMs: 180_000,
        intervalMs: 500,
        what: `all ${VOLUMES} volumes processed`,
      },
    );
    const recorded = readFileSync(volumeLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((x) => JSON.parse(x) as VolumeRecorded);
    // Each volume's plugin ran once, with every member, on one instance's own copies.
    expect(recorded.map((r) => r.key).sort()).toEqual([...keys].sort());
    const byPid = new Map(members.map((m) => [m.child.pid, m]));
    for (const r of recorded) {
      expect(r.members, r.key).toEqual([...MOMENTS].sort());
      const m = byPid.get(r.pid);
      expect(m, r.key).toBeDefined();
      for (const p of r.localPaths) expect(p.startsWith(`${m!.landing}${path.sep}`), `${r.key}: ${p}`).toBe(true);
    }
    // Where the volume ran: its members from this landing, or gathered into .gathered/.
    const rows = await site.ledger.files({ limit: 100 });
    let gathered = 0;
    for (const r of recorded) {
      const m = byPid.get(r.pid)!;
      for (const p of r.localPaths) {
        const name = path.basename(p);
        const row = rows.find((f) => f.path === name);
        if (row?.landedOn === m.id) expect(p).toBe(path.join(m.landing, 'radar', name));
        else {
          expect(p).toBe(path.join(m.landing, '.gathered', 'radar', name));
          gathered++;
        }
      }
    }
    // vsftpd sent each file once to land it, plus once per gathered copy.
    const sent = (await readXferlog(server.xferlogPath ?? '')).filter((t) => t.complete);
    expect(sent).toHaveLength(files.length + gathered);
    const once = countBy(sent, (t) => path.basename(t.path));
    expect([...once.keys()].sort()).toEqual([...files].sort());
    console.log(
      `per-host volumes: ${VOLUMES} volumes x ${MOMENTS.length}, ${gathered} members gathered from the source`,
    );
    // Which instance lands which member is the fleet's race: when one instance landed them all
    // there is nothing to gather (said, not hidden); with members on several hosts, some volume
    // ran where part of it was not.
    const landers = new Set(rows.flatMap((f) => (f.landedOn ? [f.landedOn] : [])));
    if (landers.size > 1) expect(gathered, `members landed on ${[...landers].join(', ')}`).toBeGreaterThan(0);
    else console.warn(`per-host volumes: every member landed on ${[...landers].join('')}: nothing gathered this run`);
    for (const m of members) m.child.kill('SIGTERM');
    for (const m of members) expect((await m.exited).code, `${m.id}: ${m.stderr().slice(0, 300)}`).toBe(0);
  }, 240_000);
});

async function processedCount(l: PostgresLedger): Promise<number> {
  return (await l.status()).reduce((n, s) => n + (s.counts['processed'] ?? 0), 0);
}
