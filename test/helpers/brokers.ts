/**
 * Real message brokers for tests and benchmarks, from Debian, each started on 127.0.0.1 with
 * free ports and a private directory, and stopped by the process id it was started with:
 * mosquitto, nats-server with JetStream, rabbitmq-server. A broker can be stopped and started
 * again on the same port and directory (the "broker down" tests).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

export interface Broker {
  readonly port: number;
  readonly url: string;
  /** mosquitto with `tls`: the TLS listener (`mqtts://127.0.0.1:<tlsPort>`). */
  readonly tlsPort?: number;
  readonly tlsUrl?: string;
  readonly dir: string;
  /** Stop the broker (SIGTERM, then SIGKILL); its data directory stays for a restart. */
  stop(): Promise<void>;
  /** mosquitto: kill -9, no goodbye to its clients (a crashed broker). */
  kill?(): Promise<void>;
  /** Start it again on the same port and directory. */
  start(): Promise<void>;
  /** Stop it and remove its directory. */
  destroy(): Promise<void>;
}

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const NATS_SERVER = '/usr/sbin/nats-server';
export const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';

export function brokerAvailable(which: 'mosquitto' | 'nats' | 'rabbitmq'): boolean {
  const bin = { mosquitto: MOSQUITTO, nats: NATS_SERVER, rabbitmq: `${RABBITMQ_BIN}/rabbitmq-server` }[which];
  return existsSync(bin);
}

/** Resolves once something accepts TCP connections on the port, within `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null)
      throw new Error(`broker exited (${child.exitCode}) before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function spawnQuiet(bin: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(env && { env }) });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  child.once('exit', (code) => {
    if (code && code !== 0 && process.env['POLLER_TEST_BROKER_LOG']) process.stderr.write(`${bin}: ${stderr}\n`);
  });
  return child;
}

async function brokerDir(name: string): Promise<string> {
  const dir = path.join(os.tmpdir(), `poller-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** mosquitto; with `tls`, a second listener speaks TLS with that certificate. */
export async function startMosquitto(opts: { tls?: { certPath: string; keyPath: string } } = {}): Promise<Broker> {
  const dir = await brokerDir('mosquitto');
  const port = await freePort();
  const tlsPort = opts.tls ? await freePort() : undefined;
  const conf = path.join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'user root',
      'max_queued_messages 100000',
      ...(opts.tls && tlsPort !== undefined
        ? [`listener ${tlsPort} 127.0.0.1`, `certfile ${opts.tls.certPath}`, `keyfile ${opts.tls.keyPath}`]
        : []),
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const broker: Broker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    ...(tlsPort !== undefined && { tlsPort, tlsUrl: `mqtts://127.0.0.1:${tlsPort}` }),
    dir,
    async start() {
      child = spawnQuiet(MOSQUITTO, ['-c', conf]);
      await waitForPort(port, 10_000, child);
      if (tlsPort !== undefined) await waitForPort(tlsPort, 10_000, child);
    },
    stop: () => stopChild(child),
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGKILL');
      await exited;
    },
    async destroy() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await broker.start();
  return broker;
}

export async function startNats(): Promise<Broker> {
  const dir = await brokerDir('nats');
  const port = await freePort();
  let child: ChildProcess | undefined;
  const broker: Broker = {
    port,
    url: `nats://127.0.0.1:${port}`,
    dir,
    async start() {
      child = spawnQuiet(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]);
      await waitForPort(port, 15_000, child);
    },
    stop: () => stopChild(child),
    async destroy() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await broker.start();
  return broker;
}

/** RabbitMQ takes 6-14 s to start: start it once per test file. */
export async function startRabbit(): Promise<Broker> {
  const dir = await brokerDir('rabbit');
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  await writeFile(path.join(dir, 'rabbitmq.conf'), 'loopback_users = none\n');
  const nodename = `t${port}@localhost`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RABBITMQ_NODENAME: nodename,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq'),
    HOME: dir,
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    await execFileAsync(`${RABBITMQ_BIN}/rabbitmqctl`, ['-n', nodename, 'stop'], { env, timeout: 30_000 }).catch(
      () => undefined,
    );
    await stopChild(child);
  };
  const broker: Broker = {
    port,
    url: `amqp://127.0.0.1:${port}`,
    dir,
    async start() {
      child = spawnQuiet(`${RABBITMQ_BIN}/rabbitmq-server`, [], env);
      await waitForPort(port, 60_000, child);
    },
    stop,
    async destroy() {
      await stop();
      // epmd outlives the node.
      await execFileAsync('epmd', ['-port', String(epmdPort), '-kill'], { env, timeout: 10_000 }).catch(
        () => undefined,
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
  await broker.start();
  return broker;
}
