/** file:// sources: a local directory, watched for changes between scheduled scans. */
import { defineSourceKind } from '../kind.js';

export const localKind = defineSourceKind({
  schemes: ['file'],
  label: 'file',
  options: {},
  defaultPort: () => 0,
  rootPath: (url) => decodeURIComponent(url.pathname),
  async load() {
    const { createLocalSource } = await import('./local-source.js');
    return (opts) => createLocalSource(opts);
  },
});
