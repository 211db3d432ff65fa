/**
 * Claim owners: `host:pid:token`. A claim whose owner is a dead process on this host is taken
 * back at once (kill -9 and restart); claims of other hosts wait for their lease to expire.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';

export function newOwnerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export function isOwnerGone(owner: string, self: string): boolean {
  if (owner === self) return false;
  const [host, pidText] = owner.split(':');
  if (host !== os.hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return true; // same pid, other token: an earlier life of this process id
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
