import net from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/**
 * A block of `count` consecutive ports, all free a moment ago, for passive data connections.
 * Chosen at random in a high range and checked one by one; a few attempts are enough on a quiet machine.
 */
export async function freePortRange(count: number): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const min = 20_000 + Math.floor(Math.random() * 35_000);
    let ok = true;
    for (let port = min; port < min + count && ok; port++) ok = await isFree(port);
    if (ok) return { min, max: min + count - 1 };
  }
  throw new Error(`no block of ${count} free ports found on 127.0.0.1`);
}

async function isFree(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
