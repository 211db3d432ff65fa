/**
 * What poller checks at start before announcing anything on WIS2: links a subscriber can fetch
 * (wnm-links.ts) and topics that follow the WIS2 Topic Hierarchy (topic-hierarchy.ts), one
 * line per mistake, by config path. Run by the composition root and when the events side opens.
 */
import type { Config } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { loadTopicTree, type TopicNode, topicProblems } from './topic-hierarchy.js';
import { isWnmDataSink, wnmLinkProblems } from './wnm-links.js';

/** Every WIS2 topic the config can publish on, with its config path. */
function configuredTopics(config: Config): Array<{ at: string; topic: string }> {
  const events = config.events;
  if (!events) return [];
  const out: Array<{ at: string; topic: string }> = [];
  const wnmSinks = events.sinks.filter(isWnmDataSink);
  events.sinks.forEach((s, i) => {
    if (isWnmDataSink(s) && s.topic !== undefined) out.push({ at: `events.sinks[${i}].topic`, topic: s.topic });
  });
  config.sources.forEach((src, i) => {
    if (!wnmSinks.some((s) => !s.sources || s.sources.includes(src.name))) return;
    src.wnm?.topics?.forEach((r, j) => {
      out.push({ at: `sources[${i}].wnm.topics[${j}].topic`, topic: r.topic });
    });
  });
  return out;
}

export interface Wis2ConfigReport {
  readonly problems: string[];
  /** Said once at start when the topic tree could not be checked in full. */
  readonly notice?: string;
}

export function wis2ConfigReport(config: Config): Wis2ConfigReport {
  const events = config.events;
  if (!events) return { problems: [] };
  const problems = wnmLinkProblems(config.sources, events);
  let tree: TopicNode | undefined;
  let notice: string | undefined;
  if (events.topicHierarchy !== undefined) {
    tree = loadTopicTree(events.topicHierarchy);
    if (!tree)
      problems.push(
        `events.topicHierarchy: no WIS2 Topic Hierarchy at ${events.topicHierarchy} (expected topic-hierarchy/earth-system-discipline/index.csv); clone github.com/wmo-im/wis2-topic-hierarchy there`,
      );
  }
  const topics = configuredTopics(config);
  if (topics.length > 0 && events.topicHierarchy === undefined)
    notice =
      'WIS2 topics checked up to the discipline level only; set events.topicHierarchy to a copy of github.com/wmo-im/wis2-topic-hierarchy to check the levels below';
  for (const { at, topic } of topics)
    for (const p of topicProblems(topic, { centreId: events.centreId, ...(tree && { tree }) }))
      problems.push(`${at}: "${topic}" ${p}`);
  return { problems, ...(notice && { notice }) };
}

/** Throws a ConfigError (one line per mistake) when WIS2 announcements would not conform. */
export function assertWis2Config(config: Config): Wis2ConfigReport {
  const report = wis2ConfigReport(config);
  if (report.problems.length > 0) throw new ConfigError(report.problems);
  return report;
}
