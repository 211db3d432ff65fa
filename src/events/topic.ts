/**
 * Topic templates: `{centreId}`, `{source}`, `{kind}` and `{dirs}` (the directories of
 * `<source>/<path>`). Templates are written with `/` separators (MQTT); subject- and
 * routing-key-based brokers (NATS, AMQP) get `.` separators, with dots inside a level made `_`
 * so that a level stays one token.
 */
import { topicLevelOf } from './topic-hierarchy.js';

export interface TopicValues {
  readonly centreId: string;
  readonly source: string;
  readonly kind: string;
  /** The remote path; its directories fill `{dirs}`. */
  readonly path: string;
}

export type TopicStyle = 'slash' | 'dot';

export const DEFAULT_DATA_TOPIC = 'origin/a/wis2/{centreId}/data/core/weather/surface-based-observations/weather-radar';
export const DEFAULT_SR3_TOPIC = 'v03/post/{dirs}';
export const DEFAULT_LIFECYCLE_TOPIC = 'poller/{centreId}/{source}/{kind}';

/**
 * A topic level may not contain the MQTT wildcards or separators. WIS2 topics (`wis2`) follow
 * the hierarchy's conventions too: lower case, no dots (`Radar.North` → `radar-north`).
 */
function level(text: string, style: TopicStyle, wis2: boolean): string {
  if (wis2) return topicLevelOf(text);
  const clean = text.replace(/[#+\0]/g, '_');
  return style === 'dot' ? clean.replace(/[.*>\s]/g, '_') : clean;
}

export function renderTopic(template: string, v: TopicValues, style: TopicStyle, wis2 = false): string {
  const dirs = [v.source, ...v.path.split('/').slice(0, -1)].filter((d) => d !== '').map((d) => level(d, style, wis2));
  const levels = template.split('/').flatMap((part) => {
    if (part === '{dirs}') return dirs;
    return [
      part.replace(/\{(centreId|source|kind)\}/g, (_m, key: 'centreId' | 'source' | 'kind') =>
        level(v[key], style, wis2),
      ),
    ];
  });
  return levels.join(style === 'dot' ? '.' : '/');
}
