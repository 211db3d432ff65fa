import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const UNIT = fileURLToPath(new URL('../../deploy/systemd/poller.service', import.meta.url));

async function hasSystemdAnalyze(): Promise<boolean> {
  try {
    await run('systemd-analyze', ['--version']);
    return true;
  } catch {
    return false;
  }
}

const available = await hasSystemdAnalyze();
if (!available) {
  if (process.env['CI'] === 'true') {
    throw new Error('systemd-analyze is missing in CI: run scripts/install-systemd-tools.sh first');
  }
  console.warn('NOTICE: systemd-analyze not found; skipping the unit verification (scripts/install-systemd-tools.sh)');
}

/** Parse a unit into `Section.Key` → values (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq).trim()}`;
    keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return keys;
}

function seconds(value: string): number {
  const m = /^(\d+)\s*(ms|s|min|m|h)?$/.exec(value);
  if (!m) throw new Error(`unreadable time span ${value}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n / 1000 : unit === 'min' || unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
}

describe('deploy/systemd/poller.service', () => {
  let dir = '';
  let unitCopy = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'poller-systemd-'));
    // verify checks that ExecStart's binary exists; the real one is installed only on a host.
    const text = (await readFile(UNIT, 'utf8')).replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`);
    unitCopy = path.join(dir, 'poller.service');
    await writeFile(unitCopy, text);
  });
  afterAll(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('has the hardening and daemon settings operators rely on', async () => {
    const unit = parseUnit(await readFile(UNIT, 'utf8'));
    const one = (key: string) => unit.get(key)?.at(-1);
    expect(one('Service.Type')).toBe('exec');
    expect(one('Service.Restart')).toBe('on-failure');
    expect(one('Service.KillSignal')).toBe('SIGTERM');
    expect(one('Service.NoNewPrivileges')).toBe('yes');
    expect(one('Service.ProtectSystem')).toBe('strict');
    expect(one('Service.PrivateTmp')).toBe('yes');
    expect(one('Service.CapabilityBoundingSet')).toBe('');
    expect(one('Service.User')).toBe('poller');
    expect(one('Service.ReadWritePaths')).toContain('/var/lib/poller');
    expect(unit.get('Service.LoadCredential')?.length).toBeGreaterThan(0);
    expect(one('Service.ExecStart')).toMatch(/ run --config \/etc\/poller\/poller\.yaml$/);
    // Longer than poller's default 30 s shutdown grace, so a clean stop is never SIGKILLed.
    expect(seconds(one('Service.TimeoutStopSec') ?? '0')).toBeGreaterThan(30);
  });

  it.skipIf(!available)('passes systemd-analyze verify without a warning', async () => {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', unitCopy]);
    const own = `${stdout}${stderr}`.split('\n').filter((l) => l.includes('poller.service'));
    expect(own).toEqual([]);
  });

  it.skipIf(!available)('reports a broken copy of the unit, so the check above can fail', async () => {
    const broken = path.join(dir, 'broken.service');
    await writeFile(
      broken,
      (await readFile(unitCopy, 'utf8')).replace('ProtectSystem=strict', 'ProtectSystem=sometimes'),
    );
    const result = await run('systemd-analyze', ['verify', '--man=no', broken]).catch(
      (err: { stdout: string; stderr: string }) => err,
    );
    expect(`${result.stdout}${result.stderr}`).toContain('broken.service');
  });

  it.skipIf(!available)('scores as well hardened in systemd-analyze security', async (ctx) => {
    const result = await run('systemd-analyze', ['security', '--offline=yes', unitCopy]).catch(() => undefined);
    if (result === undefined) {
      ctx.skip('systemd-analyze security --offline is not supported by this systemd');
      return;
    }
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(result.stdout);
    expect(m).not.toBeNull();
    // systemd rates ≤ 2.0 as "OK"; a regression in the hardening shows up here.
    expect(Number(m?.[1])).toBeLessThanOrEqual(2);
  });
});
