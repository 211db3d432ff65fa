/**
 * The built CLI refuses, at start, a WIS2 announcement config that would not conform: a sink
 * whose links would be `file://` paths (no publicBaseUrl) and a topic outside the WIS2 Topic
 * Hierarchy; one line each on stderr, exit code 2, nothing run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/engine-env.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { officialAvailable, TOPIC_HIERARCHY_DIR } from '../helpers/wis2-official.js';

const available = officialAvailable();
let tmp: TmpDir | undefined;
afterEach(async () => {
  await tmp?.remove();
  tmp = undefined;
});

describe.skipIf(!available)('WIS2 config refusals at start', () => {
  it('file:// links and a topic off the hierarchy: one line each, exit 2', async () => {
    tmp = await makeTmpDir('poller-wis2-refuse-');
    const config = {
      landing: './landing',
      ledger: './ledger.db',
      sources: [{ name: 'Radar.North', url: `file://${tmp.path}/in`, include: ['**/*.bufr'] }],
      events: {
        centreId: 'xx-test',
        topicHierarchy: TOPIC_HIERARCHY_DIR,
        sinks: [
          {
            name: 'gb',
            type: 'file',
            url: './events.jsonl',
            topic: 'origin/a/wis2/{centreId}/data/core/weather/surface-based-observations/{source}',
          },
        ],
      },
    };
    const file = path.join(tmp.path, 'poller.yaml');
    writeFileSync(file, JSON.stringify(config));
    for (const cmd of [['check'], ['run-once']]) {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'poller.js'), ...cmd, '--config', file], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toEqual([
        `poller: events.sinks[0].publicBaseUrl: sink "gb" would announce links like file://${tmp.path}/in/<path> (source "Radar.North") that a subscriber cannot fetch without poller's credentials; set publicBaseUrl to the https (or http, ftp, sftp) URL that serves the landing directory`,
        'poller: events.sinks[0].topic: "origin/a/wis2/{centreId}/data/core/weather/surface-based-observations/{source}" level 9 "{source}" is not a level of the hierarchy; put it below "experimental"',
      ]);
      expect(existsSync(path.join(tmp.path, 'ledger.db'))).toBe(false);
    }
  }, 60_000);
});
