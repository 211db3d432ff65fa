/** sftp:// sources (ssh2): a password or a private key, the server's host key pinned or known. */
import { z } from 'zod';
import { defineSourceKind } from '../kind.js';

export const sftpKind = defineSourceKind({
  schemes: ['sftp'],
  label: 'sftp',
  options: {
    privateKeyFile: z.string().optional().describe('SFTP: private key file.'),
    passphrase: z.string().optional().describe('SFTP: passphrase of the private key.'),
    passphraseFile: z.string().optional().describe('SFTP: file holding the passphrase of the private key.'),
    hostKey: z.string().optional().describe('SFTP: SHA256:... fingerprint of the server host key.'),
    knownHosts: z.string().optional().describe('SFTP: a known_hosts file.'),
  },
  defaultPort: () => 22,
  settings({ options: o, at, resolve, readSecret }) {
    const passphrase = o.passphraseFile ? readSecret(o.passphraseFile, `${at}.passphraseFile`) : o.passphrase;
    const key = o.privateKeyFile ? readSecret(o.privateKeyFile, `${at}.privateKeyFile`) : undefined;
    return {
      ...(key !== undefined && { privateKey: Buffer.from(key) }),
      ...(passphrase !== undefined && { passphrase }),
      ...(o.hostKey && { hostKey: o.hostKey }),
      ...(o.knownHosts && { knownHosts: resolve(o.knownHosts) }),
    };
  },
  async load() {
    const { createSftpSource } = await import('./sftp-source.js');
    return (opts) => createSftpSource(opts);
  },
});
