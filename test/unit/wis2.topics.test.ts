/**
 * Topics by rule, checked against the official WIS2 Topic Hierarchy (read in place): every
 * configured topic is checked at start, one line per mistake; `{source}`/`{dirs}` are made
 * hierarchy levels (lower case, no dots); per-source rules pick the topic by glob, media type
 * or volume.
 */
import { describe, expect, it } from 'vitest';
import { buildConfig, type SourceConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { renderTopic } from '../../src/events/topic.js';
import { loadTopicTree, topicProblems } from '../../src/events/topic-hierarchy.js';
import { ruleTopic } from '../../src/events/topic-rules.js';
import { assertWis2Config } from '../../src/events/wis2-config.js';
import { officialAvailable, TOPIC_HIERARCHY_DIR } from '../helpers/wis2-official.js';

const available = officialAvailable();
const O = 'origin/a/wis2/{centreId}/data/core';
const SYNOP = `${O}/weather/surface-based-observations/synop`;
const RADAR = `${O}/weather/surface-based-observations/weather-radar`;

describe.skipIf(!available)('WIS2 topics against the official hierarchy', () => {
  const tree = loadTopicTree(TOPIC_HIERARCHY_DIR);
  const check = (t: string) => topicProblems(t, { centreId: 'xx-test', ...(tree && { tree }) });

  it('reads the tree; known leaves and anything under experimental conform', () => {
    expect(tree?.children.get('weather')?.children.has('surface-based-observations')).toBe(true);
    for (const t of [
      SYNOP,
      RADAR,
      `${O}/weather/experimental/{source}/{dirs}`,
      `${O}/ocean/experimental`,
      'cache/a/wis2/xx-test/data/recommended/weather/prediction/forecast/medium-range/deterministic/global',
      `${O}/weather/space-based-observations/metop-b/ascat`,
      `${O}/weather/aviation/metar`,
      'origin/a/wis2/xx-test/metadata',
    ])
      expect({ t, problems: check(t) }).toEqual({ t, problems: [] });
  });

  it('one line per mistake: case, dots, fixed levels, centre id, depth, unknown levels, placeholders', () => {
    const cases: Array<[string, RegExp]> = [
      [`${O}/Weather/surface-based-observations/synop`, /level 7 "Weather" must be lower case/],
      [`${O}/weather/surface-based-observations/synop.v2`, /level 9 "synop.v2" .*no dots/],
      [`public/a/wis2/{centreId}/data/core/weather/surface-based-observations/synop`, /level 1 \(channel\)/],
      [`origin/a/wis2/fr-other/data/core/weather/surface-based-observations/synop`, /centre-id\) "fr-other"/],
      [`origin/a/wis2/{centreId}/data/open/weather/surface-based-observations/synop`, /level 6 \(data-policy\)/],
      [`${O}/weather`, /stops at the discipline "weather"/],
      [
        `${O}/weather/surface-based-observations`,
        /stops at the branch "surface-based-observations"; add one of .*synop/,
      ],
      [`${O}/weather/surface-based-observations/radar`, /level 9 "radar" is not in the hierarchy here/],
      [`${O}/weather/surface-based-observations/{source}`, /"\{source\}" is not a level .* below "experimental"/],
      [`${O}/weather/surface-based-observations/synop/extra`, /level 10 "extra" is not in the hierarchy/],
      ['poller/{centreId}/{source}', /has 3 levels/],
    ];
    for (const [t, why] of cases) {
      const p = check(t);
      expect({ t, n: p.length }).toEqual({ t, n: 1 });
      expect(p[0]).toMatch(why);
    }
  });

  it('at start: a bad topic in a sink or a source rule is refused, one line each, by config path', () => {
    let issues: string[] = [];
    try {
      assertWis2Config(
        buildConfig(
          {
            landing: './l',
            ledger: './l.db',
            sources: [
              {
                name: 'obs',
                url: 'file:///srv/obs',
                wnm: { topics: [{ match: '**/IS*', topic: `${O}/weather/surface-based-observations/SYNOP` }] },
              },
            ],
            events: {
              centreId: 'xx-test',
              topicHierarchy: TOPIC_HIERARCHY_DIR,
              sinks: [
                {
                  name: 'gb',
                  type: 'mqtt',
                  url: 'mqtt://127.0.0.1',
                  publicBaseUrl: 'https://d.example.org',
                  topic: `${O}/weather/radar`,
                },
              ],
            },
          },
          '/etc/poller',
          {},
        ),
      );
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues = [...err.issues];
    }
    expect(issues).toEqual([
      `events.sinks[0].topic: "${O}/weather/radar" level 8 "radar" is not in the hierarchy here; use one of advisories-warnings, aviation, maritime-safety-information, prediction, space-based-observations, surface-based-observations, experimental (or experimental)`,
      `sources[0].wnm.topics[0].topic: "${O}/weather/surface-based-observations/SYNOP" level 9 "SYNOP" must be lower case letters, digits, "-" or "_" (no dots)`,
    ]);
  });
});

describe('topic levels and rules', () => {
  it('{source} and {dirs} are made hierarchy levels on WIS2 topics: lower case, dots as "-"', () => {
    const v = { centreId: 'xx-test', source: 'Radar.North', kind: 'fetched', path: '2026.01/Sub Dir/f.h5' };
    expect(renderTopic(`${O}/weather/experimental/{source}/{dirs}`, v, 'slash', true)).toBe(
      'origin/a/wis2/xx-test/data/core/weather/experimental/radar-north/radar-north/2026-01/sub-dir',
    );
    // Not WIS2 (sr3 routing keys, lifecycle topics): the directories as they are.
    expect(renderTopic('v03/post/{dirs}', v, 'slash')).toBe('v03/post/Radar.North/2026.01/Sub Dir');
  });

  it('the first matching rule picks the topic: glob, media type, volumes; no match leaves the sink its own', () => {
    const src = {
      wnm: {
        geometry: null,
        topics: [
          { volumes: true, topic: RADAR },
          { match: ['**/IS*'], topic: SYNOP },
          { mediaType: 'application/bufr', match: ['**/IU*'], topic: `${O}/weather/surface-based-observations/temp` },
        ],
      },
    } as unknown as SourceConfig;
    const at = (path: string, volume = false) => ruleTopic(src, { path, mediaPath: path, volume });
    expect(at('RMA1_0315_01_20261123T120000Z', true)).toBe(RADAR);
    expect(at('obs/ISMD01_LFPW_231200.bufr')).toBe(SYNOP);
    expect(at('obs/IUSD01_LFPW_231200.bufr')).toContain('/temp');
    expect(at('obs/IUSD01_LFPW_231200.txt')).toBeUndefined();
    expect(at('other/x.h5')).toBeUndefined();
  });
});
