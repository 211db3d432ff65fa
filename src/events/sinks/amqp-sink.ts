/**
 * AMQP 0-9-1 sink (amqplib): a confirm channel, so `publish` resolves on the publisher confirm;
 * persistent messages on a durable topic exchange (`xpublic` by default, as Sarracenia pumps
 * name theirs). The event id is the AMQP `message-id`.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { SinkConfig } from '../../config/load.js';
import type { SinkMessage } from '../payload.js';
import { Breaker, type PublishAck, publishFailed, type Sink, withTimeout } from './sink.js';

export class AmqpSink implements Sink {
  readonly #cfg: SinkConfig;
  #conn: ChannelModel | undefined;
  #channel: ConfirmChannel | undefined;
  readonly #breaker = new Breaker();

  constructor(cfg: SinkConfig) {
    this.#cfg = cfg;
  }

  async open(): Promise<void> {
    if (this.#channel) return;
    await this.close();
    const url = new URL(this.#cfg.url);
    if (this.#cfg.user !== undefined) url.username = encodeURIComponent(this.#cfg.user);
    if (this.#cfg.password !== undefined) url.password = encodeURIComponent(this.#cfg.password);
    try {
      const conn = await amqp.connect(url.href, {
        timeout: this.#cfg.timeoutMs,
        ...(this.#cfg.ca !== undefined && { ca: [this.#cfg.ca] }),
        rejectUnauthorized: !this.#cfg.insecure,
      });
      this.#breaker.reset();
      const lost = (err?: Error) => {
        this.#channel = undefined;
        this.#breaker.trip(publishFailed(this.#cfg.name, err ?? 'connection closed'));
      };
      conn.on('close', lost);
      conn.on('error', lost);
      const channel = await conn.createConfirmChannel();
      channel.on('close', lost);
      channel.on('error', lost);
      await channel.assertExchange(this.#cfg.exchange, 'topic', { durable: true });
      this.#conn = conn;
      this.#channel = channel;
    } catch (err) {
      throw publishFailed(this.#cfg.name, err);
    }
  }

  async publish(m: SinkMessage): Promise<PublishAck> {
    const channel = this.#channel;
    if (!channel) throw publishFailed(this.#cfg.name, 'not connected');
    const confirmed = new Promise<void>((resolve, reject) => {
      channel.publish(
        this.#cfg.exchange,
        m.topic,
        m.body,
        { persistent: true, messageId: m.id, contentType: m.contentType, timestamp: Math.floor(Date.now() / 1000) },
        (err: unknown) => (err ? reject(publishFailed(this.#cfg.name, err ?? 'nack')) : resolve()),
      );
    });
    await withTimeout(
      Promise.race([confirmed, this.#breaker.promise]),
      this.#cfg.timeoutMs,
      `event sink ${this.#cfg.name}`,
    );
    return {};
  }

  async close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#channel = undefined;
    if (conn) await conn.close().catch(() => undefined);
  }
}
