import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';
import { bufrCommand, runBufrDump, runBufrRender, runBufrSummary } from '../../src/cli/bufr.js';
import { parseFastBufrArgs } from '../../src/cli/bufr-fast.js';

const BIN = fileURLToPath(new URL('../../bin/poller.js', import.meta.url));

/** The built command's stdout, stderr and exit code. */
function poller(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const TIME = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

async function files() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-cli-'));
  const obs = path.join(dir, 'obs.bufr');
  await writeFile(
    obs,
    encodeSynop([
      {
        block: 10,
        station: 384,
        name: 'BERLIN',
        latitudeDeg: 52.46,
        longitudeDeg: 13.4,
        heightM: 48,
        time: TIME,
        airTemperatureK: 275.35,
        pressurePa: 100900,
      },
    ]),
  );
  const radar = path.join(dir, 'radar.bufr');
  const data = new Float64Array(36 * 30).map((_, i) => (i % 30) * 2 - 5);
  await writeFile(
    radar,
    encodeRadarVolume({
      radar: 'DEMO',
      time: TIME,
      quantity: 'DBZH',
      sweeps: [{ elevationDeg: 0.5, rays: 36, bins: 30, data }],
    }),
  );
  return { dir, obs, radar };
}

describe('poller bufr', () => {
  it('dump prints every value, or a JSON document with --json', async () => {
    const { obs } = await files();
    const lines: string[] = [];
    expect(await runBufrDump(obs, {}, (l) => lines.push(l))).toBe(0);
    expect(lines.join('\n')).toMatch(/012101 airTemperature = 275\.35 K/);
    expect(lines.join('\n')).toMatch(/001015 stationOrSiteName = "BERLIN"/);
    const json: string[] = [];
    expect(await runBufrDump(obs, { json: true }, (l) => json.push(l))).toBe(0);
    const doc = JSON.parse(json.join('\n')) as { messages: Array<{ nested: unknown[] }> };
    expect(doc.messages[0]!.nested.length).toBe(1);
    const flat: string[] = [];
    expect(await runBufrDump(obs, { json: true, nested: false }, (l) => flat.push(l))).toBe(0);
    expect(JSON.parse(flat.join('')).messages[0]).not.toHaveProperty('nested');
  });

  it('summary lists radar sweeps; render writes a PNG', async () => {
    const { dir, radar } = await files();
    const lines: string[] = [];
    expect(await runBufrSummary(radar, {}, (l) => lines.push(l))).toBe(0);
    expect(lines.join('\n')).toMatch(/sweep 0: DBZH elevation 0.5 deg, 36 rays x 30 bins/);
    const out = path.join(dir, 'q.png');
    expect(await runBufrRender(radar, { sweep: 0, out }, () => {})).toBe(0);
    const png = await readFile(out);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(710);
  });

  it('exit codes: 1 on a decode failure, 2 on usage errors', async () => {
    const { dir, radar, obs } = await files();
    const bad = path.join(dir, 'bad.bufr');
    await writeFile(bad, (await readFile(obs)).subarray(0, 50));
    const sink: string[] = [];
    const errs: string[] = [];
    expect(
      await runBufrDump(
        bad,
        {},
        (l) => sink.push(l),
        (l) => errs.push(l),
      ),
    ).toBe(1);
    expect(
      await runBufrDump(
        path.join(dir, 'missing.bufr'),
        {},
        (l) => sink.push(l),
        (l) => errs.push(l),
      ),
    ).toBe(2);
    expect(errs.join('')).toMatch(/cannot read .*missing\.bufr: ENOENT; check the path/);
    expect(await runBufrRender(radar, { sweep: 5, out: path.join(dir, 'x.png') }, (l) => sink.push(l))).toBe(2);
    expect(await runBufrRender(obs, { sweep: 0, out: path.join(dir, 'x.png') }, (l) => sink.push(l))).toBe(1);
    expect(sink.join('\n')).toMatch(/out of range; .* has sweeps 0 to 0/);
  });

  it('decodes many files and directories in one call: one result per file, failures named, the rest go on', async () => {
    const { dir, obs, radar } = await files();
    const bad = path.join(dir, 'bad.bufr');
    await writeFile(bad, (await readFile(obs)).subarray(0, 50));
    const missing = path.join(dir, 'missing.bufr');
    const out: string[] = [];
    const err: string[] = [];
    const code = await runBufrDump(
      [obs, bad, missing, radar],
      { json: true },
      (t) => out.push(t),
      (t) => err.push(t),
    );
    expect(code).toBe(2);
    const docs = out
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { file: string; messages: Array<{ ok: boolean }>; error?: { message: string } });
    expect(docs.map((d) => d.file)).toEqual([obs, bad, missing, radar]);
    expect(docs[0]!.messages[0]!.ok).toBe(true);
    expect(docs[1]!.messages[0]!.ok).toBe(false);
    expect(docs[2]!.error?.message).toMatch(/cannot read/);
    expect(docs[3]!.messages[0]!.ok).toBe(true);
    const errLines = err.join('').trimEnd().split('\n');
    expect(errLines).toHaveLength(2);
    expect(errLines[0]).toMatch(new RegExp(`^error: ${bad}: 1 of 1 message\\(s\\) failed; first: `));
    expect(errLines[1]).toMatch(/^error: cannot read .*missing\.bufr: ENOENT/);

    // A directory is read recursively, in name order; only the truncated file fails.
    const text: string[] = [];
    expect(
      await runBufrSummary(
        [dir],
        {},
        (t) => text.push(t),
        () => {},
      ),
    ).toBe(1);
    const summary = text.join('');
    expect(summary).toMatch(new RegExp(`file ${bad}\n[^]*file ${obs}\n[^]*file ${radar}\n`));
    expect(summary).toMatch(/3 files, 2 decoded whole, 1 with errors; 3 message\(s\), 2 decoded, 1 failed/);
    expect(
      await runBufrSummary(
        [path.join(dir, 'nothing-here')],
        {},
        () => {},
        () => {},
      ),
    ).toBe(2);
  });

  it('the yargs command module parses its subcommands and sets the exit code', async () => {
    const { dir, radar } = await files();
    const out = path.join(dir, 'y.png');
    const before = process.exitCode;
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string | Uint8Array) => {
      chunks.push(String(c));
      return true;
    }) as typeof process.stdout.write;
    try {
      await yargs(['bufr', 'render', radar, '--sweep', '0', '--out', out]).command(bufrCommand).strict().parseAsync();
      expect(process.exitCode).toBe(0);
      await yargs(['bufr', 'summary', radar]).command(bufrCommand).strict().parseAsync();
      expect(process.exitCode).toBe(0);
      await yargs(['bufr', 'dump', '--json', radar, radar]).command(bufrCommand).strict().parseAsync();
      expect(process.exitCode).toBe(0);
    } finally {
      process.stdout.write = write;
      process.exitCode = before;
    }
    expect(chunks.join('')).toMatch(/wrote .*y\.png: DBZH sweep 0/);
    expect(chunks.join('')).toMatch(/1 message\(s\), 1 decoded, 0 failed/);
    expect(chunks.join('').match(/^\{"file":/gm)).toHaveLength(2);
    expect((await readFile(out)).subarray(1, 4).toString('latin1')).toBe('PNG');
  });

  it('a plain dump or summary skips the argument parser; anything else still goes through it', () => {
    expect(parseFastBufrArgs(['bufr', 'summary', 'a.bufr', 'b.bufr'])).toEqual({
      sub: 'summary',
      files: ['a.bufr', 'b.bufr'],
      json: false,
      nested: true,
    });
    expect(parseFastBufrArgs(['bufr', 'dump', '--json', '--no-nested', '--tables', 'T', 'a'])).toEqual({
      sub: 'dump',
      files: ['a'],
      json: true,
      nested: false,
      tables: 'T',
    });
    expect(parseFastBufrArgs(['bufr', 'dump', '--tables=T', 'a'])?.tables).toBe('T');
    for (const argv of [
      ['bufr', 'summary', '--help'],
      ['bufr', 'summary', 'a', '--bogus'],
      ['bufr', 'summary', '--json', 'a'], // --json is dump's
      ['bufr', 'dump', '--tables'],
      ['bufr', 'summary'],
      ['bufr', 'render', 'a'],
      ['status'],
    ]) {
      expect(parseFastBufrArgs(argv), argv.join(' ')).toBeUndefined();
    }
  });

  it('the built command prints through the fast path what the parser path prints, with the same exit codes', async () => {
    const { dir, obs, radar } = await files();
    const expected: string[] = [];
    expect(await runBufrSummary([obs, radar], {}, (t) => expected.push(t))).toBe(0);
    const fast = await poller(['bufr', 'summary', obs, radar]);
    expect(fast).toMatchObject({ code: 0, stdout: expected.join('') });
    const json: string[] = [];
    expect(await runBufrDump([radar], { json: true }, (t) => json.push(t))).toBe(0);
    expect((await poller(['bufr', 'dump', '--json', radar])).stdout).toBe(json.join(''));
    const missing = await poller(['bufr', 'summary', path.join(dir, 'absent.bufr')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*absent\.bufr: ENOENT; check the path/);
    // Not plain: the parser answers, with its own message and exit code.
    const bogus = await poller(['bufr', 'summary', obs, '--bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/Unknown argument: bogus/);
  });
});
