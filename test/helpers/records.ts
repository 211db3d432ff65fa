/** Reads what the `record` test plugin wrote, and hashes files on the test server. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

export interface Recorded {
  path: string;
  size: number;
  sha256: string;
  attempt: number;
  pid: number;
  localPath?: string;
}

export function readRecords(file: string): Recorded[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Recorded);
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** How many times each value occurs. */
export function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return m;
}
