/**
 * Webhook sink: each event is POSTed as its JSON body; a 2xx answer is the acknowledgement.
 * The event id travels as `Idempotency-Key` (and `ce-id` style consumers read it from the body).
 */
import type { SinkConfig } from '../../config/load.js';
import type { SinkMessage } from '../payload.js';
import { type PublishAck, publishFailed, type Sink } from './sink.js';

export class WebhookSink implements Sink {
  readonly #cfg: SinkConfig;
  readonly #auth: string | undefined;

  constructor(cfg: SinkConfig) {
    this.#cfg = cfg;
    this.#auth =
      cfg.user !== undefined
        ? `Basic ${Buffer.from(`${cfg.user}:${cfg.password ?? ''}`).toString('base64')}`
        : cfg.password !== undefined
          ? `Bearer ${cfg.password}`
          : undefined;
  }

  async open(): Promise<void> {}

  async publish(m: SinkMessage): Promise<PublishAck> {
    let res: Response;
    try {
      res = await fetch(this.#cfg.url, {
        method: 'POST',
        headers: {
          'content-type': m.contentType,
          'idempotency-key': m.id,
          'x-poller-topic': m.topic,
          ...(this.#auth && { authorization: this.#auth }),
        },
        body: m.body,
        signal: AbortSignal.timeout(this.#cfg.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
    } catch (err) {
      throw publishFailed(this.#cfg.name, err);
    }
    if (res.status < 200 || res.status > 299) throw publishFailed(this.#cfg.name, `HTTP ${res.status}`);
    return {};
  }

  async close(): Promise<void> {}
}
