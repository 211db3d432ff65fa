/**
 * The proxy one connection of a source goes through: its `proxy:` or the environment's, with
 * `proxyCredentialsFile` applied, and a tunnel opened within the source's connect timeout. The
 * first connection through a proxy is logged once per source (without credentials).
 */
import type { Socket } from 'node:net';
import { SourceError } from '../../errors.js';
import type { SourceConnectOptions } from '../source.js';
import { dialThroughProxy } from './dial.js';
import { describeProxy, type ProxySettings, resolveProxy } from './proxy-settings.js';

type ProxyOptions = Pick<SourceConnectOptions, 'name' | 'proxy' | 'proxyCredentials' | 'log'>;

/** Sources (by name) whose proxy was logged, and which one: a change is logged again. */
const announced = new Map<string, string>();

/**
 * The proxy for a connection to `host:port` serving `scheme` (`https`, `ftp`, `sftp`, `mqtt`...),
 * or undefined for a direct connection. An environment variable that does not parse is the
 * source's problem (SourceError), named with its fix.
 */
export function proxyFor(
  opts: ProxyOptions,
  scheme: string,
  host: string,
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): ProxySettings | undefined {
  const resolved = resolveProxy(opts.proxy, scheme, host, port, env);
  if (resolved === undefined) return undefined;
  if (typeof resolved === 'string') {
    throw new SourceError('POLLER_PROXY_INVALID', `source ${JSON.stringify(opts.name)}: ${resolved}`);
  }
  const proxy =
    opts.proxyCredentials !== undefined
      ? { ...resolved, username: opts.proxyCredentials.username, password: opts.proxyCredentials.password }
      : resolved;
  const described = `${describeProxy(proxy)} (from ${proxy.from})`;
  if (announced.get(opts.name) !== described) {
    announced.set(opts.name, described);
    opts.log.info(
      { event: 'source.proxied', source: opts.name, proxy: describeProxy(proxy), from: proxy.from },
      `${opts.name}: connecting through proxy ${described}`,
    );
  }
  return proxy;
}

/** A raw tunnel to `host:port` through `proxy`, bounded by the source's connect timeout. */
export async function openTunnel(
  opts: Pick<SourceConnectOptions, 'connectTimeoutMs'>,
  proxy: ProxySettings,
  host: string,
  port: number,
  signal?: AbortSignal,
): Promise<Socket> {
  return await dialThroughProxy(proxy, host, port, { timeoutMs: opts.connectTimeoutMs, signal });
}
