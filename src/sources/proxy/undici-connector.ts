/**
 * An undici connector that opens every connection of a Pool through a proxy tunnel, then TLS
 * over it (for https origins) with the same verification and SNI as a direct connection. HTTP
 * and S3 sources share it through their Pool, so one proxy path serves both.
 */
import { buildConnector } from 'undici';
import type { SourceConnectOptions } from '../source.js';
import type { ProxySettings } from './proxy-settings.js';
import { openTunnel } from './source-proxy.js';

export function proxyConnector(
  proxy: ProxySettings,
  opts: Pick<SourceConnectOptions, 'connectTimeoutMs'>,
  tls: buildConnector.BuildOptions,
): buildConnector.connector {
  const overTunnel = buildConnector(tls);
  return (options, callback) => {
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    openTunnel(opts, proxy, options.hostname, port).then(
      (socket) => {
        if (options.protocol !== 'https:') {
          socket.resume();
          callback(null, socket);
          return;
        }
        overTunnel({ ...options, httpSocket: socket }, (err, tlsSocket) => {
          if (err !== null) {
            socket.destroy();
            callback(err, null);
          } else callback(null, tlsSocket);
        });
      },
      (err: Error) => callback(err, null),
    );
  };
}
