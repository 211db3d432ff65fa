/**
 * MQTT sink (npm `mqtt`): QoS 1, so `publish` resolves on PUBACK. MQTT 5 first; a broker that
 * refuses the protocol version gets 3.1.1. A stable client id (`poller-<sink>-<host>`) so a
 * broker's ACLs and session view stay the same across restarts. No automatic reconnect: the
 * dispatcher decides when to try again.
 */
import os from 'node:os';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { SinkConfig } from '../../config/load.js';
import type { SinkMessage } from '../payload.js';
import { Breaker, type PublishAck, publishFailed, type Sink, withTimeout } from './sink.js';

/** CONNACK reason codes meaning "not this protocol version" (v5: 0x84; 3.1.1: 1). */
const UNSUPPORTED_VERSION = new Set([0x84, 1]);

export function mqttClientOptions(cfg: SinkConfig, version: 4 | 5): IClientOptions {
  return {
    protocolVersion: version,
    clientId: cfg.clientId ?? `poller-${cfg.name}-${os.hostname()}`.slice(0, 64),
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: cfg.timeoutMs,
    ...(cfg.user !== undefined && { username: cfg.user }),
    ...(cfg.password !== undefined && { password: cfg.password }),
    ...(cfg.ca !== undefined && { ca: cfg.ca }),
    rejectUnauthorized: !cfg.insecure,
  };
}

export class MqttSink implements Sink {
  readonly #cfg: SinkConfig;
  #client: MqttClient | undefined;
  readonly #breaker = new Breaker();

  constructor(cfg: SinkConfig) {
    this.#cfg = cfg;
  }

  async open(): Promise<void> {
    if (this.#client?.connected) return;
    await this.close();
    const versions: Array<4 | 5> = this.#cfg.mqttVersion ? [this.#cfg.mqttVersion] : [5, 4];
    let lastError: unknown;
    for (const version of versions) {
      try {
        const client = await mqtt.connectAsync(this.#cfg.url, mqttClientOptions(this.#cfg, version), false);
        this.#breaker.reset();
        client.on('close', () => this.#breaker.trip(publishFailed(this.#cfg.name, 'connection closed')));
        client.on('error', (err) => this.#breaker.trip(publishFailed(this.#cfg.name, err)));
        this.#client = client;
        return;
      } catch (err) {
        lastError = err;
        const code = (err as { code?: unknown }).code;
        if (!(typeof code === 'number' && UNSUPPORTED_VERSION.has(code))) break;
      }
    }
    throw publishFailed(this.#cfg.name, lastError);
  }

  async publish(m: SinkMessage): Promise<PublishAck> {
    const client = this.#client;
    if (!client) throw publishFailed(this.#cfg.name, 'not connected');
    const props =
      client.options.protocolVersion === 5
        ? { properties: { contentType: m.contentType, userProperties: { id: m.id } } }
        : {};
    await withTimeout(
      Promise.race([client.publishAsync(m.topic, m.body, { qos: 1, ...props }), this.#breaker.promise]),
      this.#cfg.timeoutMs,
      `event sink ${this.#cfg.name}`,
    );
    return {};
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.endAsync(true).catch(() => undefined);
  }
}
