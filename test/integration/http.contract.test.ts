import { describe, it } from 'vitest';
import { createHttpSource } from '../../src/sources/http/http-source.js';
import { httpServerMissing, startWebServer, type WebServerKind } from '../helpers/http-servers.js';
import { webSourceOptions } from '../helpers/http-source-options.js';
import { createLogSink } from '../helpers/log-sink.js';
import { defineSourceContract } from '../helpers/source-contract.js';

const KINDS: WebServerKind[] = [
  'nginx-html',
  'nginx-json',
  'apache-table',
  'apache-pre',
  'apache-plain',
  'lighttpd',
  'python',
];

for (const kind of KINDS) {
  const missing = httpServerMissing(kind);
  if (missing !== undefined) {
    if (process.env['CI'] === 'true') throw new Error(`${kind}: ${missing}`);
    describe.skip(`Source contract: http (${kind}): ${missing}`, () => {
      it('skipped', () => undefined);
    });
    continue;
  }
  defineSourceContract(`http (${kind})`, async () => {
    const server = await startWebServer(kind);
    const source = createHttpSource(webSourceOptions(server.port, createLogSink().log));
    return { source, root: server.root, close: () => server.close() };
  });
}
