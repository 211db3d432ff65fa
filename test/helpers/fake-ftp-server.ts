/**
 * A scripted FTP control-channel fake, for edge cases real servers will not produce on demand:
 * a server that never greets, one that stops answering, odd replies. It speaks only what a
 * script says; for real protocol behaviour use ftp-server.ts (ftp-srv) or debian-ftp.ts.
 */
import net from 'node:net';

/** Replies to one command line; return undefined to stay silent (a stall). */
export type FakeReply = (command: string, arg: string, state: { connection: number }) => string | undefined;

export interface FakeFtpServerOptions {
  /** Greeting per connection (1-based); undefined = never greet. @default '220 fake ready' */
  greeting?: (connection: number) => string | undefined;
  /** Close the connection right after the greeting (as servers do after 421). */
  closeAfterGreeting?: (connection: number) => boolean;
  reply?: FakeReply;
  /**
   * Text sent over a passive data connection in answer to LIST/MLSD (EPSV, CWD and the listing
   * commands are then answered by the fake itself).
   */
  listing?: string;
  /**
   * With `listing`: 'pasv-nat' refuses EPSV and answers PASV with a private address (as servers
   * behind NAT do) whose port is open on 127.0.0.1. @default 'epsv'
   */
  passive?: 'epsv' | 'pasv-nat';
}

export interface FakeFtpServer {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Command lines received, in order (PASS arguments included: tests check they never leak). */
  readonly commands: string[];
  close(): Promise<void>;
}

/** Replies that make a client log in and set up (no data transfers). */
export const loginReplies: FakeReply = (command) => {
  switch (command) {
    case 'USER':
      return '331 password please';
    case 'PASS':
      return '230 logged in';
    case 'FEAT':
      return '211-Features:\r\n UTF8\r\n211 End';
    case 'QUIT':
      return '221 bye';
    default:
      return '200 ok';
  }
};

export async function startFakeFtpServer(opts: FakeFtpServerOptions = {}): Promise<FakeFtpServer> {
  let count = 0;
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  const dataServers = new Set<net.Server>();
  const server = net.createServer((socket) => {
    const connection = ++count;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const greeting = opts.greeting ? opts.greeting(connection) : '220 fake ready';
    if (greeting !== undefined) socket.write(`${greeting}\r\n`);
    if (opts.closeAfterGreeting?.(connection)) {
      socket.end();
      return;
    }
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      // Bounded: a line per round, and the buffer only holds what the client sent.
      for (let at = buffered.indexOf('\r\n'); at >= 0; at = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 2);
        commands.push(line);
        const space = line.indexOf(' ');
        const command = (space >= 0 ? line.slice(0, space) : line).toUpperCase();
        const arg = space >= 0 ? line.slice(space + 1) : '';
        if (opts.listing !== undefined && handleListing(command, socket, opts, dataServers)) continue;
        const answer = (opts.reply ?? loginReplies)(command, arg, { connection });
        if (answer !== undefined) socket.write(`${answer}\r\n`);
        if (command === 'QUIT') socket.end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    connections: () => count,
    commands,
    async close() {
      for (const socket of sockets) socket.destroy();
      for (const data of dataServers) data.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Passive listing support: EPSV opens a one-shot data listener, LIST/MLSD sends `text` over it. */
function handleListing(
  command: string,
  control: net.Socket,
  opts: FakeFtpServerOptions,
  dataServers: Set<net.Server>,
): boolean {
  const state = control as net.Socket & { pendingData?: Promise<net.Socket> };
  const text = opts.listing ?? '';
  const nat = opts.passive === 'pasv-nat';
  if (command === 'CWD') {
    control.write('250 ok\r\n');
    return true;
  }
  if (command === 'EPSV' && nat) {
    control.write('502 EPSV not implemented\r\n');
    return true;
  }
  if (command === 'EPSV' || (command === 'PASV' && nat)) {
    const data = net.createServer();
    dataServers.add(data);
    state.pendingData = new Promise<net.Socket>((resolve) => {
      data.once('connection', (socket) => {
        data.close();
        dataServers.delete(data);
        resolve(socket);
      });
    });
    data.listen(0, '127.0.0.1', () => {
      const address = data.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      control.write(
        command === 'EPSV'
          ? `229 Entering Extended Passive Mode (|||${port}|)\r\n`
          : `227 Entering Passive Mode (10,1,2,3,${port >> 8},${port & 255})\r\n`,
      );
    });
    return true;
  }
  if ((command === 'LIST' || command === 'MLSD') && state.pendingData) {
    const pending = state.pendingData;
    state.pendingData = undefined;
    control.write('150 here it comes\r\n');
    void pending.then((socket) => {
      socket.end(text, () => control.write('226 done\r\n'));
    });
    return true;
  }
  return false;
}

export interface GateProxy {
  readonly port: number;
  /** Connections refused with the 421 reply so far. */
  refused(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a real server that answers some connections itself with
 * `421 Too many connections` and passes the rest through. Data connections go straight to the
 * server (its PASV/EPSV replies name its own ports on 127.0.0.1).
 */
export async function startGateProxy(
  targetPort: number,
  refuse: (connection: number, open: number) => boolean,
): Promise<GateProxy> {
  let count = 0;
  let refused = 0;
  let open = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const connection = ++count;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (refuse(connection, open)) {
      refused++;
      client.end('421 Too many connections (2) from this IP\r\n');
      return;
    }
    open++;
    client.on('close', () => {
      open--;
    });
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    refused: () => refused,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
