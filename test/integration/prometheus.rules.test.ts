/**
 * The shipped alert rules as Prometheus reads them: `promtool check rules` (syntax, templates)
 * and `promtool test rules` (each alert fires on the series it is for, at the time it should,
 * with its annotations, and stays quiet on the healthy series beside it).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const run = promisify(execFile);
const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = `${DIR}poller.rules.yml`;
const TESTS = `${DIR}poller.rules.test.yml`;

async function hasPromtool(): Promise<boolean> {
  try {
    await run('promtool', ['--version']);
    return true;
  } catch {
    return false;
  }
}

const available = await hasPromtool();
if (!available) {
  if (process.env['CI'] === 'true')
    throw new Error('promtool is missing in CI: run scripts/install-monitoring-tools.sh');
  console.warn('NOTICE: promtool not found; skipping the alert rule checks (scripts/install-monitoring-tools.sh)');
}

interface RuleFile {
  groups: Array<{ rules: Array<{ alert?: string; expr: string }> }>;
}
interface TestFile {
  tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
}

describe.skipIf(!available)('deploy/prometheus', () => {
  it('passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('passes promtool test rules, and every alert has a test where it fires', async () => {
    const { stdout } = await run('promtool', ['test', 'rules', TESTS], { cwd: DIR });
    expect(stdout).toContain('SUCCESS');
    const rules = parse(await readFile(RULES, 'utf8')) as RuleFile;
    const tests = parse(await readFile(TESTS, 'utf8')) as TestFile;
    const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    const firing = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    );
    expect(alerts.filter((a) => !firing.has(a))).toEqual([]);
    expect(alerts.length).toBeGreaterThanOrEqual(10);
  });

  it('fails promtool test rules when a rule no longer fires where it should', async () => {
    // The tests are only worth something if a broken rule fails them: raise one threshold.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'poller-rules-'));
    try {
      const text = await readFile(RULES, 'utf8');
      await writeFile(
        `${dir}/poller.rules.yml`,
        text.replace(
          'increase(poller_poll_failures_total[15m]) >= 3',
          'increase(poller_poll_failures_total[15m]) >= 300',
        ),
      );
      await copyFile(TESTS, `${dir}/poller.rules.test.yml`);
      const failed = await run('promtool', ['test', 'rules', 'poller.rules.test.yml'], { cwd: dir }).then(
        () => false,
        (err: { stdout?: string; stderr?: string }) => `${err.stdout}${err.stderr}`.includes('PollerSourceFailing'),
      );
      expect(failed).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
