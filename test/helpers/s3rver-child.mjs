// s3rver in a child process: its continuation tokens use DES, which Node 20's OpenSSL 3 offers
// only with --openssl-legacy-provider (given by the parent). Prints "ready", then one line per request.
import S3rver from 's3rver';

const [port, directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
  vhostBuckets: false,
});
// First in the stack: s3rver's routes answer without calling on.
server.middleware.unshift(async (ctx, next) => {
  process.stdout.write(`REQ ${ctx.method} ${ctx.url}\n`);
  await next();
});
await server.run();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  server.close().then(() => process.exit(0));
});
