/**
 * One broker of a WIS2 subscription: a persistent MQTT session (stable client id, clean=false,
 * QoS 1) that hands each message to `onMessage` and acknowledges it only once that resolved (the
 * notification is in the journal); a rejection drops the connection unacknowledged, so the
 * broker keeps the message and sends it again. Several links share one `onMessage` (one stream).
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { errorCode } from '../../errors.js';
import { connectMqtt } from '../proxy/mqtt-connect.js';
import type { SourceConnectOptions, Wis2Settings } from '../source.js';

/** Reconnect interval after the broker went away (mqtt.js retries on its own). */
const RECONNECT_MS = 2_000;

export interface BrokerLinkOptions {
  /** `mqtt(s)://host:port`, no credentials. */
  readonly url: string;
  readonly settings: Wis2Settings;
  readonly connect: SourceConnectOptions;
  readonly log: Logger;
  /** Resolves once the message is durable; rejects when it is not (then it is not acknowledged). */
  readonly onMessage: (topic: string, payload: Buffer, broker: string) => Promise<void>;
}

export interface BrokerLink {
  readonly url: string;
  /** Resolves once subscribed, or after the connect timeout (the client keeps retrying). */
  readonly ready: Promise<void>;
  end(): Promise<void>;
}

function clientOptions(o: BrokerLinkOptions, client: () => MqttClient | undefined): IClientOptions {
  const { settings, connect: c, log } = o;
  return {
    protocolVersion: settings.protocolVersion,
    clientId: settings.clientId,
    clean: false,
    reconnectPeriod: RECONNECT_MS,
    connectTimeout: c.connectTimeoutMs,
    resubscribe: false,
    ...(settings.protocolVersion === 5 && { properties: { sessionExpiryInterval: settings.sessionExpirySec } }),
    ...(c.user !== '' && { username: c.user }),
    ...(c.password !== undefined && { password: c.password }),
    ...(c.tls.ca !== undefined && { ca: c.tls.ca }),
    rejectUnauthorized: !c.tls.insecure,
    customHandleAcks: (topic, message, _packet, done) => {
      o.onMessage(topic, message, o.url).then(
        () => done(0),
        (err: unknown) => {
          log.error(
            { event: 'wis2.journal_failed', err, broker: o.url },
            `cannot record a notification from ${o.url}; the broker will deliver it again`,
          );
          // No PUBACK: dropping the connection makes the broker keep and re-send it.
          client()?.stream.destroy();
        },
      );
    },
  };
}

function subscribe(c: MqttClient, o: BrokerLinkOptions): Promise<void> {
  const topic = o.settings.topic;
  return new Promise((resolve) => {
    c.subscribe(topic, { qos: 1 }, (err, granted) => {
      const refused = granted?.find((g) => g.qos === 128);
      if (err || refused)
        o.log.error(
          { event: 'wis2.subscribe_failed', topic, broker: o.url, err: err ?? undefined },
          `broker ${o.url} refused the subscription to ${topic}; check the topic filter and the broker's ACL`,
        );
      else o.log.info({ event: 'wis2.subscribed', topic, broker: o.url }, `subscribed to ${topic} on ${o.url}`);
      resolve();
    });
  });
}

/** Connects to one broker and keeps the session. */
export function linkBroker(o: BrokerLinkOptions): BrokerLink {
  let down = false;
  let lastError: string | undefined;
  let firstReady: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    firstReady = resolve;
  });
  let closing = false;
  // Through the source's (or the environment's) proxy when one applies.
  const c: MqttClient = connectMqtt(
    o.url,
    clientOptions(o, () => c),
    o.connect,
  );
  c.on('connect', (connack) => {
    if (down) o.log.info({ event: 'wis2.broker_up', broker: o.url }, `broker ${o.url} is back`);
    down = false;
    lastError = undefined;
    // With a session present the broker kept the subscription; otherwise (first start, broker
    // lost its state) subscribe again.
    const sub = connack.sessionPresent ? Promise.resolve() : subscribe(c, o);
    void sub.then(() => firstReady?.());
  });
  c.on('close', () => {
    if (closing || down) return;
    down = true;
    o.log.warn({ event: 'wis2.broker_down', broker: o.url }, `lost the broker ${o.url}; reconnecting`);
  });
  c.on('error', (err) => {
    if (err.message === lastError) return;
    lastError = err.message;
    o.log.warn(
      { event: 'wis2.broker_error', broker: o.url, err: { code: errorCode(err), message: err.message } },
      `broker ${o.url}: ${err.message}`,
    );
  });
  // QoS 0 messages have no acknowledgement to hold back.
  c.on('message', (topic, payload, packet) => {
    if (packet.qos !== 0) return;
    o.onMessage(topic, payload, o.url).catch((err: unknown) =>
      o.log.error({ event: 'wis2.journal_failed', err, broker: o.url }, `cannot record a notification from ${o.url}`),
    );
  });
  const timer = setTimeout(() => firstReady?.(), o.connect.connectTimeoutMs);
  void ready.then(() => clearTimeout(timer));
  return {
    url: o.url,
    ready,
    async end() {
      closing = true;
      clearTimeout(timer);
      await c.endAsync(false).catch(() => undefined);
    },
  };
}
