/**
 * Connects mqtt.js to a broker, through the source's proxy when one applies: MQTT (and MQTT
 * over TLS) on a tunnel of its own, MQTT over WebSockets (`wss://`, port 443) with the
 * WebSocket's connection opened through the tunnel. TLS verification and SNI are as direct.
 */
import { isIP, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import mqtt, { type IClientOptions, MqttClient } from 'mqtt';
import type { SourceConnectOptions } from '../source.js';
import type { ProxySettings } from './proxy-settings.js';
import { openTunnel, proxyFor } from './source-proxy.js';
import { TunnelStream } from './tunnel-stream.js';

/** Which variable curl would read for each broker scheme (`wss` is HTTPS underneath). */
const ENV_SCHEME: Record<string, string> = { mqtt: 'mqtt', mqtts: 'mqtts', ws: 'http', wss: 'https' };

export function connectMqtt(brokerUrl: string, options: IClientOptions, opts: SourceConnectOptions): MqttClient {
  const url = new URL(brokerUrl);
  const scheme = url.protocol.slice(0, -1);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port);
  let proxy: ProxySettings | undefined;
  try {
    proxy = proxyFor(opts, ENV_SCHEME[scheme] ?? scheme, host, port);
  } catch (err) {
    // An unusable proxy variable: every connection attempt fails with its fix.
    return new MqttClient(() => new TunnelStream(Promise.reject(err as Error)), options);
  }
  if (proxy === undefined) return mqtt.connect(brokerUrl, options);
  const tls: ConnectionOptions = {
    ...(options.ca !== undefined && { ca: options.ca as ConnectionOptions['ca'] }),
    rejectUnauthorized: options.rejectUnauthorized !== false,
    ...(isIP(host) === 0 && { servername: host }),
  };
  const through = proxy;
  if (scheme === 'ws' || scheme === 'wss') {
    // ws hands this to http(s).request: a connection that arrives by callback.
    const createConnection = (_o: unknown, done: (err: Error | null, socket?: Socket) => void): undefined => {
      opening(opts, through, host, port, scheme === 'wss' ? tls : undefined).then(
        (socket) => done(null, socket),
        (err: Error) => done(err),
      );
      return undefined;
    };
    return mqtt.connect(brokerUrl, { ...options, wsOptions: { createConnection } as IClientOptions['wsOptions'] });
  }
  return new MqttClient(
    () => new TunnelStream(opening(opts, through, host, port, scheme === 'mqtts' ? tls : undefined)),
    options,
  );
}

/** A tunnel to the broker, with TLS over it when asked; resolves once TLS is up. */
async function opening(
  opts: SourceConnectOptions,
  proxy: ProxySettings,
  host: string,
  port: number,
  tls: ConnectionOptions | undefined,
): Promise<Socket> {
  const raw = await openTunnel(opts, proxy, host, port);
  if (tls === undefined) return raw;
  raw.resume();
  return await new Promise<Socket>((resolve, reject) => {
    const secure = tlsConnect({ ...tls, socket: raw, host });
    secure.once('secureConnect', () => {
      secure.removeListener('error', reject);
      resolve(secure);
    });
    secure.once('error', reject);
  });
}
