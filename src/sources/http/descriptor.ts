/** http:// and https:// sources (undici): directory index pages, basic auth or a bearer token. */
import { z } from 'zod';
import { defineSourceKind } from '../kind.js';

export const httpKind = defineSourceKind({
  schemes: ['http', 'https'],
  label: 'http/https',
  options: {
    bearerTokenFile: z.string().optional().describe('HTTP(S): file holding a bearer token (Authorization: Bearer).'),
  },
  defaultPort: (protocol) => (protocol === 'https' ? 443 : 80),
  after: {
    delete: false,
    move: false,
    refusal: 'an http(s) index cannot delete or move files; remove it (s3 sources can delete)',
  },
  settings({ options: o, at, readSecret }) {
    const bearerToken = o.bearerTokenFile ? readSecret(o.bearerTokenFile, `${at}.bearerTokenFile`) : undefined;
    return bearerToken === undefined ? {} : { bearerToken };
  },
  async load() {
    const { createHttpSource } = await import('./http-source.js');
    return (opts) => createHttpSource(opts);
  },
});
