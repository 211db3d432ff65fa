import { createS3Source } from '../../src/sources/s3/s3-source.js';
import { createLogSink } from '../helpers/log-sink.js';
import { s3SourceOptions, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { defineSourceContract } from '../helpers/source-contract.js';

for (const anonymous of [false, true]) {
  let server: TestS3Server | undefined;
  defineSourceContract(
    `s3 (s3rver, ${anonymous ? 'anonymous' : 'signed'}, page size 2)`,
    async () => {
      server = await startS3Server();
      const { mkdtemp } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      const path = await import('node:path');
      const root = await mkdtemp(path.join(tmpdir(), 'poller-s3-tree-'));
      const s = server;
      const source = createS3Source({
        ...s3SourceOptions(s, createLogSink().log, { prefix: 'feed/', anonymous }),
        pageSize: 2,
      });
      return { source, root, close: () => s.close() };
    },
    {
      missingDir: 'empty',
      serverMtimes: true,
      afterFilesCreated: async (root) => server?.putTree(root, 'feed/'),
    },
  );
}
