/**
 * WIS2 brokers through real proxies: MQTT, MQTT over TLS and MQTT over WebSockets with TLS
 * (`wis2+wss://`), each through squid (HTTP CONNECT) and dante (SOCKS5, with and without
 * username/password) to a real mosquitto. The WebSocket side is a small bridge in this process
 * (Debian's mosquitto cannot open a websockets listener here): TLS and the WebSocket handshake
 * are real, the MQTT session is mosquitto's. The proxy's own log proves the path.
 */

import { randomBytes } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { PollerError } from '../../src/errors.js';
import type { ProxySettings } from '../../src/sources/proxy/proxy-settings.js';
import type { Source, SourceConnectOptions } from '../../src/sources/source.js';
import { createWis2Source } from '../../src/sources/wis2/wis2-source.js';
import { type Broker, brokerAvailable, startMosquitto } from '../helpers/brokers.js';
import { createLogSink } from '../helpers/log-sink.js';
import { proxyAvailability, type RunningProxy, startDante, startSquid } from '../helpers/proxies.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls-cert.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const proxies = proxyAvailability();
const runnable = proxies.available && brokerAvailable('mosquitto');
if (!runnable && process.env['CI'] === 'true') throw new Error(proxies.reason || 'mosquitto missing');
if (!runnable) console.warn(`WIS2 proxy tests skipped: ${proxies.reason || 'mosquitto missing'}`);

const TOPIC = 'origin/a/wis2/xx-proxy/data/core/weather/#';

/** An HTTPS WebSocket endpoint at /mqtt that carries each connection to mosquitto's TCP port. */
async function startWssBridge(cert: TestCertificate, brokerPort: number) {
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem });
  const wss = new WebSocketServer({ server, path: '/mqtt' });
  wss.on('connection', (socket) => {
    const ws = createWebSocketStream(socket);
    const tcp = net.connect(brokerPort, '127.0.0.1');
    ws.pipe(tcp).pipe(ws);
    const end = () => {
      ws.destroy();
      tcp.destroy();
    };
    ws.on('error', end);
    tcp.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!runnable)('WIS2 brokers through squid and dante', () => {
  let broker: Broker;
  let squid: RunningProxy;
  let dante: RunningProxy;
  let danteAuth: RunningProxy;
  let tmp: TmpDir;
  let cert: TestCertificate;
  let bridge: Awaited<ReturnType<typeof startWssBridge>>;
  let n = 0;

  beforeAll(async () => {
    tmp = await makeTmpDir('poller-wis2-proxy-');
    cert = await makeTestCertificate(tmp.path);
    [broker, squid, dante, danteAuth] = await Promise.all([
      startMosquitto({ tls: { certPath: cert.certPath, keyPath: cert.keyPath } }),
      startSquid(),
      startDante(),
      startDante({ auth: true }),
    ]);
    bridge = await startWssBridge(cert, broker.port);
  }, 60_000);

  afterAll(async () => {
    await bridge?.close();
    await Promise.allSettled([broker?.destroy(), squid?.stop(), dante?.stop(), danteAuth?.stop()]);
    await tmp?.remove();
  }, 30_000);

  const transports = [
    { name: 'mqtt', port: () => broker.port, tls: false, websocket: false },
    { name: 'mqtts', port: () => broker.tlsPort ?? 0, tls: true, websocket: false },
    { name: 'wss', port: () => bridge.port, tls: true, websocket: true },
  ] as const;
  const vias = [
    { name: 'squid (HTTP CONNECT)', proxy: () => squid, auth: false },
    { name: 'dante (SOCKS5)', proxy: () => dante, auth: false },
    { name: 'dante with username/password', proxy: () => danteAuth, auth: true },
  ];

  function open(
    t: (typeof transports)[number],
    over: Partial<SourceConnectOptions>,
    logs = createLogSink('info'),
  ): { source: Source; logs: typeof logs } {
    const source = createWis2Source({
      name: `wis2-proxy-${++n}`,
      protocol: t.websocket ? 'wis2+wss' : t.tls ? 'wis2+mqtts' : 'wis2+mqtt',
      host: '127.0.0.1',
      port: t.port(),
      user: '',
      rootPath: '/',
      tls: { mode: 'none', insecure: false, ca: cert.certPem },
      timezone: 'UTC',
      maxConnections: 2,
      connectTimeoutMs: 5000,
      dataTimeoutMs: 5000,
      stateDir: path.join(tmp.path, 'state'),
      wis2: {
        topic: TOPIC,
        clientId: `poller-proxy-${n}-${randomBytes(3).toString('hex')}`,
        protocolVersion: 5,
        tls: t.tls,
        ...(t.websocket && { websocket: true }),
        keepMs: 60_000,
        sessionExpirySec: 60,
      },
      log: logs.log,
      ...over,
    });
    return { source, logs };
  }

  function proxyOf(p: RunningProxy): ProxySettings {
    return { protocol: p.url.startsWith('socks5') ? 'socks5' : 'http', host: p.host, port: p.port, from: 'proxy' };
  }

  for (const t of transports) {
    for (const via of vias) {
      it(`${t.name} through ${via.name}: subscribed, and the proxy logged the broker connection`, async () => {
        const p = via.proxy();
        const { source, logs } = open(t, {
          proxy: proxyOf(p),
          ...(via.auth && { proxyCredentials: { username: p.user ?? '', password: p.password ?? '' } }),
        });
        try {
          await source.watch?.(() => undefined, { signal: new AbortController().signal });
          await waitFor(() => logs.events('wis2.subscribed').length > 0, { timeoutMs: 10_000, what: 'subscribed' });
          expect(logs.events('source.proxied').length).toBe(1);
        } finally {
          await source.close();
        }
        const target = p.url.startsWith('socks5') ? `127.0.0.1.${t.port()}` : `CONNECT 127.0.0.1:${t.port()}`;
        await waitFor(async () => (await p.log()).includes(target), { timeoutMs: 10_000, what: `${target} in log` });
      });
    }
  }

  it('a SOCKS5 proxy that refuses the credentials: one clear warning, never the password, no subscription', async () => {
    const wrong = `wrong-${danteAuth.password}`;
    const { source, logs } = open(transports[1], {
      proxy: proxyOf(danteAuth),
      proxyCredentials: { username: danteAuth.user ?? '', password: wrong },
    });
    try {
      await source.watch?.(() => undefined, { signal: new AbortController().signal });
      await waitFor(() => logs.events('wis2.broker_error').length > 0, { timeoutMs: 10_000, what: 'broker error' });
      expect(logs.events('wis2.subscribed')).toEqual([]);
      const line = logs.events('wis2.broker_error')[0] as { err?: PollerError & { code?: string }; msg?: string };
      expect(line.err?.code).toBe('POLLER_PROXY_REFUSED');
      expect(JSON.stringify(logs.lines)).not.toContain(wrong);
      expect(JSON.stringify(logs.lines)).not.toContain(danteAuth.password);
    } finally {
      await source.close();
    }
  });
});
