import type { SFTPWrapper } from 'ssh2';

/**
 * A wider SSH channel window for bulk reads. ssh2 offers the server a fixed 2 MiB window and
 * tops it up only when half is used, so at most 2 MiB is ever on the way: over loopback the
 * server then waits on our event loop between bursts and a stream runs at about half of
 * OpenSSH's sftp, even with 8 MiB of READs outstanding. Keeping the window as large as the
 * READs in flight lets the server send every answer it has. ssh2 keeps the window's state
 * private; without it (another ssh2 version) this does nothing and ssh2's own window applies.
 */

interface ChannelInternals {
  incoming?: { window?: unknown };
  outgoing?: { id?: unknown; state?: unknown };
  _protocol?: { channelWindowAdjust?: (id: number, amount: number) => void };
}

/** Raises the channel's receive window back to `targetBytes` once it has fallen under half of it. */
export function keepChannelWindow(sftp: SFTPWrapper, targetBytes: number): void {
  const ch = sftp as unknown as ChannelInternals;
  const window = ch.incoming?.window;
  const id = ch.outgoing?.id;
  const adjust = ch._protocol?.channelWindowAdjust;
  if (typeof window !== 'number' || typeof id !== 'number' || typeof adjust !== 'function') return;
  if (window >= targetBytes / 2 || ch.outgoing?.state === 'closed') return;
  const amount = targetBytes - window;
  (ch.incoming as { window: number }).window = targetBytes;
  adjust.call(ch._protocol, id, amount);
}
