/** ftp:// and ftps:// sources (basic-ftp): explicit or implicit TLS, LIST times in `timezone`. */
import { z } from 'zod';
import { defineSourceKind } from '../kind.js';

export const ftpKind = defineSourceKind({
  schemes: ['ftp', 'ftps'],
  label: 'ftp/ftps',
  options: {
    tls: z.enum(['none', 'explicit', 'implicit']).optional().describe('FTPS mode; ftps:// implies explicit.'),
  },
  tlsMode: (protocol, o) => o.tls ?? (protocol === 'ftps' ? 'explicit' : 'none'),
  defaultPort: (protocol, o) => ((o.tls ?? (protocol === 'ftps' ? 'explicit' : 'none')) === 'implicit' ? 990 : 21),
  defaultUser: 'anonymous',
  async load() {
    const { createFtpSource } = await import('./ftp-source.js');
    return (opts, shared) => createFtpSource({ ...opts, hostBudget: shared.hostBudget });
  },
});
