/**
 * A stale lister: the instance holding a source's lister lease is paused (SIGSTOP) in the middle
 * of a listing, past its lease; another instance takes the lease (next epoch) and lists. Resumed
 * (SIGCONT), the paused one finishes its listing and is refused by the epoch: it records nothing,
 * nothing is fetched twice, and it goes on as a poller that fetches but does not list.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';
import { countBy, readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let ledger: PostgresLedger | undefined;
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) {
    if (d.child.exitCode !== null || d.child.signalCode !== null) continue;
    d.child.kill('SIGCONT');
    d.child.kill('SIGKILL');
  }
  await ledger?.close();
  await env?.close();
  env = undefined;
});

describe.skipIf(!pgAvailable)('a stale lister on a PostgreSQL ledger', () => {
  it('paused past its lease mid-listing, then resumed: its listing is refused by the epoch, it fetches on as a non-lister', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv({
      // A long data timeout: the paused listing must end in the epoch check, not in a timeout.
      source: { every: '1s', dataTimeout: '120s' },
      config: { ledger: url, leaseTime: '3s' },
    });
    const base = JSON.parse(readFileSync(env.configPath, 'utf8')) as Record<string, unknown>;
    const configOf = async (id: string) => {
      const file = path.join(env!.dir, `${id}.yaml`);
      await writeFile(file, JSON.stringify({ ...base, instance: id }));
      return file;
    };
    const names = ['a.bufr', 'b.bufr'];
    for (const n of names) await env.put(n, `${n}:`.repeat(800));
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;
    const processed = (n: string) => async () => (await l.history('radar', n))[0]?.state === 'processed';

    // a alone: it holds the lease (epoch 1) and lands the first files.
    const a = await startDaemon(env, ['--config', await configOf('ingest-a')]);
    daemons.push(a);
    for (const n of names) await waitFor(processed(n), { timeoutMs: 30_000, what: `${n} processed by a` });
    const aOwner = (await l.instances()).find((i) => i.id === 'ingest-a')?.owner;
    expect(await l.listers()).toMatchObject([{ source: 'radar', owner: aOwner, epoch: 1 }]);

    // a's next listing is held by the server; a is paused inside it.
    const held = await env.ftp.holdNextList();
    a.child.kill('SIGSTOP');
    await env.put('c.bufr', 'c:'.repeat(900));
    names.push('c.bufr');

    // b joins, takes the lease once a's has run out (epoch 2), lists and lands c.bufr.
    const b = await startDaemon(env, ['--config', await configOf('ingest-b')]);
    daemons.push(b);
    await waitFor(processed('c.bufr'), { timeoutMs: 30_000, what: 'c.bufr processed by b' });
    const bOwner = (await l.instances()).find((i) => i.id === 'ingest-b')?.owner;
    expect(await l.listers()).toMatchObject([{ source: 'radar', owner: bOwner, epoch: 2 }]);
    expect(b.lines().filter((x) => x.event === 'file.fetched')).toHaveLength(1);

    // a resumes: its listing (of a, b and c) answers, and the ledger refuses it.
    const versionsBefore = await Promise.all(names.map((n) => l.history('radar', n)));
    held.release();
    a.child.kill('SIGCONT');
    const lost = await a.waitForEvent('lister.lost', () => true, 30_000);
    expect(String(lost['msg'])).toMatch(
      /another instance lists this source now \(lease epoch 2, this listing held 1\)/,
    );
    expect(await Promise.all(names.map((n) => l.history('radar', n)))).toEqual(versionsBefore);
    expect(await l.listers()).toMatchObject([{ source: 'radar', owner: bOwner, epoch: 2 }]);

    // a recovers as a non-lister: it runs cycles again, is back among the instances, and a new
    // file listed by b is fetched once, by one of the two.
    const lostAt = a.lines().indexOf(lost);
    await waitFor(
      () =>
        a
          .lines()
          .slice(lostAt)
          .some((x) => x.event === 'cycle.finished'),
      {
        timeoutMs: 30_000,
        what: 'a cycle of a after the refused listing',
      },
    );
    await waitFor(async () => (await l.instances()).length === 2, { timeoutMs: 30_000, what: 'a beats again' });
    await env.put('d.bufr', 'd:'.repeat(1000));
    names.push('d.bufr');
    await waitFor(processed('d.bufr'), { timeoutMs: 30_000, what: 'd.bufr processed' });
    expect(await l.listers()).toMatchObject([{ source: 'radar', owner: bOwner, epoch: 2 }]);
    expect(a.child.exitCode).toBeNull();

    // Nothing fetched or processed twice.
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    for (const n of names) expect(served.get(n) ?? 0, n).toBe(1);
    const runs = countBy(readRecords(env.recordLog), (r) => r.path);
    for (const n of names) expect(runs.get(n) ?? 0, n).toBe(1);
    for (const n of names) expect(await l.history('radar', n), n).toHaveLength(1);
    for (const d of [a, b]) d.child.kill('SIGTERM');
    for (const d of [a, b]) expect((await d.exited).code).toBe(0);
  }, 150_000);
});
