/**
 * NATS JetStream sink (npm `nats`): `publish` resolves on the stream's PubAck. The event id is
 * the `Nats-Msg-Id`, so a re-send after a crash is recognised by JetStream (`duplicate: true`)
 * within the stream's duplicate window. The stream is created when missing, bound to the
 * first level of each configured topic (`origin.>`, `poller.>`).
 */
import { type ConnectionOptions, connect, headers, type JetStreamClient, type NatsConnection } from 'nats';
import type { SinkConfig } from '../../config/load.js';
import type { SinkMessage } from '../payload.js';
import { DEFAULT_DATA_TOPIC, DEFAULT_LIFECYCLE_TOPIC, DEFAULT_SR3_TOPIC } from '../topic.js';
import { type PublishAck, publishFailed, type Sink, withTimeout } from './sink.js';

/** The subjects a topic template can produce: placeholders become `*`, a trailing `{dirs}` becomes `>`. */
export function subjectFilter(template: string): string {
  const levels = template.split('/');
  return levels
    .map((l, i) => (l === '{dirs}' ? (i === levels.length - 1 ? '>' : '*') : /\{[a-zA-Z]+\}/.test(l) ? '*' : l))
    .join('.');
}

function streamSubjects(cfg: SinkConfig): string[] {
  const data = cfg.topic ?? (cfg.format === 'sr3-v03' ? DEFAULT_SR3_TOPIC : DEFAULT_DATA_TOPIC);
  return [...new Set([subjectFilter(data), subjectFilter(cfg.lifecycleTopic ?? DEFAULT_LIFECYCLE_TOPIC)])];
}

export class NatsSink implements Sink {
  readonly #cfg: SinkConfig;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;

  constructor(cfg: SinkConfig) {
    this.#cfg = cfg;
  }

  async open(): Promise<void> {
    if (this.#nc && !this.#nc.isClosed()) return;
    await this.close();
    const url = new URL(this.#cfg.url);
    const opts: ConnectionOptions = {
      servers: `${url.hostname}:${url.port || 4222}`,
      reconnect: false,
      timeout: this.#cfg.timeoutMs,
      name: `poller-${this.#cfg.name}`,
      ...(this.#cfg.user !== undefined && { user: this.#cfg.user }),
      ...(this.#cfg.password !== undefined && { pass: this.#cfg.password }),
      ...((url.protocol === 'tls:' || this.#cfg.ca !== undefined) && {
        tls: this.#cfg.ca !== undefined ? { ca: this.#cfg.ca } : {},
      }),
    };
    try {
      const nc = await connect(opts);
      const jsm = await nc.jetstreamManager();
      await jsm.streams.info(this.#cfg.stream).catch(async () => {
        await jsm.streams.add({ name: this.#cfg.stream, subjects: streamSubjects(this.#cfg) });
      });
      this.#nc = nc;
      this.#js = nc.jetstream();
    } catch (err) {
      throw publishFailed(this.#cfg.name, err);
    }
  }

  async publish(m: SinkMessage): Promise<PublishAck> {
    const js = this.#js;
    if (!js) throw publishFailed(this.#cfg.name, 'not connected');
    const h = headers();
    h.set('Content-Type', m.contentType);
    try {
      const ack = await withTimeout(
        js.publish(m.topic, m.body, { msgID: m.id, headers: h, timeout: this.#cfg.timeoutMs }),
        this.#cfg.timeoutMs + 1000,
        `event sink ${this.#cfg.name}`,
      );
      return { duplicate: ack.duplicate };
    } catch (err) {
      throw publishFailed(this.#cfg.name, err);
    }
  }

  async close(): Promise<void> {
    const nc = this.#nc;
    this.#nc = undefined;
    this.#js = undefined;
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
  }
}
