/**
 * wis2+mqtt(s)://broker/<topic filter> sources (and wis2+wss://, MQTT over WebSockets on 443):
 * WIS2 notifications over MQTT, files fetched from their links.
 */
import { z } from 'zod';
import { durationSchema } from '../../util/duration.js';
import { defineSourceKind } from '../kind.js';

const duration = (what: string) => durationSchema().describe(what);

export const wis2Kind = defineSourceKind({
  schemes: ['wis2+mqtt', 'wis2+mqtts', 'wis2+wss'],
  label: 'wis2+mqtt(s)',
  options: {
    wis2: z
      .strictObject({
        clientId: z
          .string()
          .regex(/^[A-Za-z0-9._-]{1,64}$/, 'use letters, digits, ".", "_" and "-" (at most 64)')
          .optional()
          .describe(
            'MQTT client id, stable across restarts (the broker keeps the session under it); default poller-<source>.',
          ),
        protocolVersion: z
          .union([z.literal(4), z.literal(5)])
          .default(5)
          .describe('MQTT 5, or 4 for MQTT 3.1.1.'),
        keep: duration('How long a notification is kept for retries and to recognise duplicates.').default(86_400_000),
        sessionExpiry: duration('MQTT 5: how long the broker keeps the session while poller is away.').default(
          7 * 86_400_000,
        ),
        brokers: z
          .array(z.string().regex(/^mqtts?:\/\/[^/@:]+(:\d+)?\/?$/, 'give mqtt://host[:port] or mqtts://host[:port]'))
          .optional()
          .describe(
            'More brokers with the same subscription (WIS2 Global Brokers): each notification is fetched once, whichever brings it first.',
          ),
      })
      .optional()
      .describe('WIS2 subscription settings (wis2+mqtt:// sources).'),
  },
  defaultPort: (protocol) => (protocol === 'wis2+wss' ? 443 : protocol === 'wis2+mqtts' ? 8883 : 1883),
  rootPath: () => '/',
  // A notification announces a complete file: there is no upload to wait out.
  announcesComplete: true,
  after: { delete: false, move: false, refusal: 'a WIS2 subscription cannot delete or move files; remove it' },
  settings({ options: o, protocol, at, issue }) {
    const topic = wis2TopicOf(o.url);
    if (topic === '')
      issue(`${at}.url: give the topic filter after the broker, e.g. wis2+mqtt://broker/origin/a/wis2/+/data/#`);
    else if (!isTopicFilter(topic))
      issue(`${at}.url: "${topic}" is not an MQTT topic filter (+ and # stand alone between slashes; # comes last)`);
    return {
      wis2: {
        topic,
        clientId: o.wis2?.clientId ?? `poller-${o.name}`,
        protocolVersion: o.wis2?.protocolVersion ?? 5,
        tls: protocol !== 'wis2+mqtt',
        ...(protocol === 'wis2+wss' && { websocket: true }),
        keepMs: o.wis2?.keep ?? 86_400_000,
        sessionExpirySec: Math.round((o.wis2?.sessionExpiry ?? 7 * 86_400_000) / 1000),
        ...(o.wis2?.brokers !== undefined && { brokers: o.wis2.brokers.map((b) => b.replace(/\/+$/, '')) }),
      },
    };
  },
  async load() {
    const { createWis2Source } = await import('./wis2-source.js');
    return (opts) => createWis2Source(opts);
  },
});

/** MQTT topic filter rules: `+` and `#` fill a whole level, `#` only the last (after `$share/<group>/`). */
function isTopicFilter(topic: string): boolean {
  const levels = topic.replace(/^\$share\/[^/+#]+\//, '').split('/');
  return levels.every(
    (l, i) => (!l.includes('+') && !l.includes('#')) || l === '+' || (l === '#' && i === levels.length - 1),
  );
}

/**
 * The topic filter of a `wis2+mqtt://broker/<filter>` URL: the raw text after the authority,
 * percent-decoded. Read from the text, not from `URL`, because a filter's `#` is a URL fragment.
 */
export function wis2TopicOf(rawUrl: string): string {
  const afterScheme = rawUrl.slice(rawUrl.indexOf('//') + 2);
  const slash = afterScheme.indexOf('/');
  if (slash < 0) return '';
  try {
    return decodeURIComponent(afterScheme.slice(slash + 1));
  } catch {
    return afterScheme.slice(slash + 1);
  }
}
